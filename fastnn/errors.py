"""The one exception type fastnn raises for problems the user can fix.

Every bad input (a malformed file, wrong shapes, NaN, labels out of range, a
corrupt download, an invalid option) is reported as a :class:`FastnnError`
whose message names the problem.  It subclasses :class:`ValueError` so that
code written against scikit-learn conventions catches it as usual; the CLI
prints its message on one line and exits non-zero instead of a traceback.
"""


import sys
from typing import Callable


class FastnnError(ValueError):
    """A problem with the user's input, data or options, with a readable message."""


def exit_code(action: Callable[[], None], out_of_memory_hint: str = "") -> int:
    """Run a command-line program's ``action`` and turn the problems a user can fix into exit codes.

    A :class:`FastnnError` (or running out of memory) prints one ``error: ...``
    line on stderr and gives 2; Ctrl-C gives 130; success gives 0.
    """
    try:
        action()
    except FastnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"error: out of memory{out_of_memory_hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
