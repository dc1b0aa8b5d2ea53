"""The options ``fastnn train`` and ``fastnn sweep`` share, each defined once.

* :func:`add_config_options`: one option per :class:`~fastnn.config.TrainConfig`
  field, generated from the field itself: ``--batch-size`` for ``batch_size``,
  the field's ``metadata["type"]`` as the argparse type, its help and default.
  A field added to ``TrainConfig`` is an option of both commands at once.
* :func:`add_data_options`: the dataset, the dev split, the cache and source folders.
* :func:`add_output_options`: the output folder, the figures, the progress output.

Every option defaults to None, so that a command can tell the options given
from the defaults (a preset fills in only what was not given; ``fastnn sweep
--resume`` refuses options that would change the sweep); the defaults are
filled in by :func:`given_config` and :func:`data_spec`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

#: The dataset when --data is not given.
DEFAULT_DATA = "mnist"


def add_config_options(p, *, skip=(), helps: dict | None = None) -> None:
    """One option per :class:`~fastnn.config.TrainConfig` field (but those in ``skip``), typed by the field.

    ``helps`` replaces the help text of some fields (``{"seed": "the first seed"}``).
    """
    from ..config import TrainConfig

    for f in fields(TrainConfig):
        if f.name in skip:
            continue
        text = (helps or {}).get(f.name, f.metadata["help"])
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=f.metadata["type"],
            default=None,
            help=f"{text} (default {f.default})".replace("%", "%%"),
        )


def given_config(args: argparse.Namespace, *, skip=()) -> dict:
    """The :class:`~fastnn.config.TrainConfig` fields given on the command line, by name."""
    from ..config import TrainConfig

    return {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if f.name not in skip and getattr(args, f.name, None) is not None
    }


def add_data_options(p, *, data_note: str = "") -> None:
    """``--data``, ``--dev-size``, ``--cache`` and ``--source``; ``data_note`` is added to --data's help."""
    from ..config import DEV_SIZE
    from ..data import AUTO_DEV_MAX

    p.add_argument(
        "--data",
        default=None,
        help=f"mnist, fashion-mnist, a Kaggle-style train.csv, or a folder of IDX files "
        f"(default {DEFAULT_DATA}){data_note}",
    )
    p.add_argument(
        "--dev-size",
        default=None,
        help=f"rows held out for the dev set: a count, a fraction < 1, or auto (default "
        f"{DEV_SIZE}: a tenth of the rows, at most {AUTO_DEV_MAX})",
    )
    p.add_argument("--cache", default=None, help="dataset cache folder (default: $FASTNN_DATA_DIR or the user cache)")
    p.add_argument("--source", default=None, help="a folder holding the dataset's IDX files, tried before downloading")


def data_spec(args: argparse.Namespace) -> str:
    """The dataset the command line names (``--data``, else the default)."""
    return DEFAULT_DATA if args.data is None else args.data


def add_output_options(p, *, default_out: str, what: str) -> None:
    """``--out`` (``what`` goes there, by default into ``default_out``), ``--no-plots`` and ``--quiet``."""
    p.add_argument("--out", default=None, help=f"folder for {what} (default {default_out})")
    p.set_defaults(_default_out=default_out)
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def out_folder(args: argparse.Namespace) -> str:
    """The output folder the command line names (``--out``, else the command's default)."""
    return args._default_out if args.out is None else args.out
