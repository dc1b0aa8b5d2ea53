"""A sweep's plan: what it runs, checked whole before any cluster starts, and kept for ``--resume``.

A :class:`Plan` is the data, the grid, the fixed options, the seeds and the dev
split; its trials follow from it (:func:`~fastnn.sweeps.grid.make_trials`), so a
plan read back from a sweep's folder names the same trials in the same order.
:func:`make_plan` checks the grid and then the data against every trial: the
data are loaded here, on the client, so a missing or malformed file, a dev
split the data cannot hold, or early stopping without a dev split is one
:class:`~fastnn.errors.FastnnError` before any worker exists.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import overload

from ..config import TrainConfig
from ..errors import FastnnError, option
from .grid import check_grid, make_trials

FORMAT = "fastnn-sweep-plan"
VERSION = 1


@dataclass(frozen=True)
class Plan:
    """What a sweep runs.  ``grid`` and ``fixed`` hold values of the :class:`TrainConfig` fields' types."""

    data: str
    grid: dict
    fixed: dict
    seeds: int
    dev_size: int | float | str
    cache: str | None = None
    source: str | None = None
    threads_per_trial: int | None = None

    def trials(self) -> list[dict]:
        """Every trial's config, in the sweep's order (a trial's index is its number)."""
        return make_trials(self.grid, self.fixed, self.seeds)

    @property
    def data_ref(self) -> tuple:
        """How a worker loads the data: ``(spec, cache, source)``."""
        return (self.data, self.cache, self.source)

    def to_json(self) -> dict:
        """The plan as ``sweep-plan.json`` holds it."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, document, where: str) -> Plan:
        """The plan a ``sweep-plan.json`` holds, checked again as a new one would be."""
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise FastnnError(f"{where}: not a fastnn sweep plan")
        if document.get("version") != VERSION:
            raise FastnnError(
                f"{where}: sweep plan version {document.get('version')!r}; this fastnn reads version {VERSION}"
            )
        try:
            return make_plan(
                document["grid"],
                document["data"],
                seeds=document["seeds"],
                fixed=document["fixed"],
                dev_size=document["dev_size"],
                cache=document["cache"],
                source=document["source"],
                threads_per_trial=document["threads_per_trial"],
            )
        except (KeyError, TypeError) as exc:
            raise FastnnError(f"{where}: an incomplete sweep plan ({exc})") from None


@overload
def _path_or_name(value: None) -> None: ...
@overload
def _path_or_name(value: str | os.PathLike) -> str: ...
def _path_or_name(value):
    """A dataset name as given; a path made absolute, so the plan resumes from any folder."""
    if value is None:
        return None
    from ..data.cache import _DATASETS

    text = str(value)
    if text.strip().lower().replace("_", "-") in _DATASETS:
        return text
    return str(Path(text).expanduser().resolve())


def check_threads(threads_per_trial) -> None:
    """``threads_per_trial`` is None or a positive integer."""
    if threads_per_trial is not None and (
        isinstance(threads_per_trial, bool) or not isinstance(threads_per_trial, int) or threads_per_trial < 1
    ):
        raise FastnnError(f"{option('threads_per_trial')} must be a positive integer, got {threads_per_trial!r}")


def make_plan(
    grid: dict,
    data="mnist",
    *,
    seeds: int = 1,
    fixed: dict | None = None,
    dev_size="auto",
    cache=None,
    source=None,
    threads_per_trial: int | None = None,
) -> Plan:
    """A checked :class:`Plan`: the grid and fixed options (:func:`check_grid`), then the data
    against every trial (:func:`check_data`).  Raises :class:`FastnnError` naming the first problem."""
    from ..data import parse_dev_size

    grid, fixed = check_grid(grid, fixed, seeds)
    check_threads(threads_per_trial)
    plan = Plan(
        data=_path_or_name(data),
        grid=grid,
        fixed=fixed,
        seeds=seeds,
        dev_size=parse_dev_size(dev_size),
        cache=_path_or_name(cache),
        source=_path_or_name(source),
        threads_per_trial=threads_per_trial,
    )
    check_data(plan)
    return plan


def check_data(plan: Plan):
    """Load the plan's data here (once per process) and check every trial against them; returns
    the whole dataset (``dev_size=0``).

    What a trial could only find out on a worker fails here instead: a dataset
    that is missing or malformed, a dev split larger than the data, and early
    stopping (``patience``) with no dev split to watch.
    """
    from ..data import dev_rows
    from .worker import _base_dataset

    base = _base_dataset(plan.data_ref)
    n_dev = dev_rows(plan.dev_size, len(base.y_train))
    if n_dev == 0:
        for trial in plan.trials():
            patience = TrainConfig(**trial).patience
            if patience > 0:
                raise FastnnError(
                    f"{option('patience', str(patience))} (early stopping) needs a dev split "
                    f"to watch, but {option('dev_size', str(plan.dev_size))} holds out no rows"
                )
    return base
