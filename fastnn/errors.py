"""The one exception type fastnn raises for problems the user can fix.

Every bad input (a malformed file, wrong shapes, NaN, labels out of range, a
corrupt download, an invalid option) is reported as a :class:`FastnnError`
whose message names the problem.  It subclasses :class:`ValueError` so that
code written against scikit-learn conventions catches it as usual; the CLI
prints its message on one line and exits non-zero instead of a traceback.
"""

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator

# True while a command line runs (inside exit_code): messages then name options as typed there.
_ON_COMMAND_LINE = contextvars.ContextVar("fastnn_on_command_line", default=False)


class FastnnError(ValueError):
    """A problem with the user's input, data or options, with a readable message."""


class Interrupted(KeyboardInterrupt):
    """A run stopped on request (Ctrl-C, SIGTERM, a ``stop`` callback) between two chunks of
    training, with its message and the exit status to end with (130 after Ctrl-C, 143 after
    SIGTERM, as a shell reports a process those signals ended)."""

    def __init__(self, message: str, exit_status: int = 130):
        super().__init__(message)
        self.exit_status = exit_status


def option(name: str, value: str | None = None) -> str:
    """How a message names the option ``name`` (a Python parameter name), with ``value`` if given.

    On the command line (while :func:`exit_code` runs a command) it is the
    option as typed there, ``--dev-size 5000`` or ``--source FOLDER``; from
    Python, the keyword argument, ``dev_size=5000`` or ``source=FOLDER``.
    """
    if command_line_running():
        flag = "--" + name.replace("_", "-")
        return flag if value is None else f"{flag} {value}"
    return name if value is None else f"{name}={value}"


def command_line_running() -> bool:
    """Whether a command line is running (messages then speak its language: :func:`option`)."""
    return _ON_COMMAND_LINE.get()


@contextlib.contextmanager
def on_command_line() -> Iterator[None]:
    """Within the block, :func:`option` spells options as the command line does."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_COMMAND_LINE.reset(token)


def exit_code(action: Callable[[], None], out_of_memory_hint: str = "") -> int:
    """Run a command-line program's ``action`` and turn the problems a user can fix into exit codes.

    A :class:`FastnnError` (or running out of memory) prints one ``error: ...``
    line on stderr and gives 2; Ctrl-C gives 130 (SIGTERM 143, where the program turned
    it into an interruption) (printing ``interrupted``, and
    the interruption's message if it has one: what was kept, how to go on);
    success gives 0.  Messages name options as the command line spells them
    (:func:`option`).
    """
    try:
        with on_command_line():
            action()
    except FastnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"error: out of memory{out_of_memory_hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return exc.exit_status if isinstance(exc, Interrupted) else 130  # 143 when it was a SIGTERM
    return 0
