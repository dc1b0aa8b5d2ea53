"""The ``fastnn`` command: one program, a subcommand per job (``fastnn train``, ``fastnn predict``, ...).

Each subcommand is a module of this package with the same small interface:

* ``HELP``: its one-line summary, shown by ``fastnn --help``;
* ``add_arguments(parser)``: its options, on the ``argparse`` parser it is given;
* ``run(args)``: does the job; problems the user can fix raise
  :class:`~fastnn.errors.FastnnError`, which :func:`main` turns into one
  ``error: ...`` line on stderr and exit status 2 (never a traceback).

Modules are imported only to build the parser, and import nothing heavy at
the top (NumPy at most), so ``fastnn --help`` is quick.  The older entry
points (``fastnn-train``, ``scripts/train.py``, ``scripts/predict.py``, ...)
call :func:`main` with their subcommand's name.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import exit_code

#: The subcommands, in the order ``fastnn --help`` lists them; each is ``fastnn.cli.<name>``.
SUBCOMMANDS = ("train", "predict", "export", "serve", "sweep")


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _summary(module) -> str:
    """A subcommand's description for ``--help``: its docstring's first paragraph, as plain text."""
    return " ".join(module.__doc__.split("\n\n")[0].replace("``", "").split())


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``fastnn SUBCOMMAND [options]``."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="fastnn", description="Train, use and ship fast multilayer perceptrons on MNIST-like data."
    )
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = _module(name)
        sub = commands.add_parser(name, help=module.HELP, description=_summary(module))
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def subcommand_parser(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of one subcommand alone, for the entry points that run just it."""
    module = _module(name)
    parser = argparse.ArgumentParser(prog=prog or f"fastnn {name}", description=_summary(module))
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv=None, *, command: str | None = None, prog: str | None = None) -> int:
    """Run the ``fastnn`` command line (or, with ``command``, that subcommand alone); returns the exit status.

    ``argv`` defaults to ``sys.argv[1:]``.  When the process is about to exit
    (``argv`` not given), the interpreter's last garbage collections are
    skipped: see :func:`_skip_final_collection`.
    """
    parser = build_parser() if command is None else subcommand_parser(command, prog)
    args = parser.parse_args(argv)
    code = exit_code(lambda: args._run(args), getattr(args, "_memory_hint", ""))
    if argv is None:
        _skip_final_collection()
    return code


def _skip_final_collection() -> None:
    """Spare the exiting interpreter its last garbage collections.

    Once numba has loaded a kernel, ~100k of its objects are alive, and
    collecting and freeing them at interpreter exit took ~0.2 s of every
    numba run.  ``gc.freeze()`` hides them from the collector; the operating
    system takes the memory back when the process ends.  Only for a process
    about to exit: in-process callers pass ``argv`` and are left alone.
    """
    import gc

    gc.freeze()


if __name__ == "__main__":  # python -m fastnn.cli
    sys.exit(main())
