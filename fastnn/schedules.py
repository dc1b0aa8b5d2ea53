"""Learning-rate schedules: the rate for every mini-batch step of a run.

Each schedule maps a step ``s`` of ``total`` steps to a multiple of the base rate:

* ``constant``: 1.
* ``step``: 1, then 0.1 from half-way, 0.01 from three quarters of the run.
* ``cosine``: 0.5 * (1 + cos(pi * s / total)), from 1 down to 0.
* ``onecycle``: a cosine rise from 1/25 to 1 over the first 30% of the steps,
  then a cosine fall to 1/25e4 (PyTorch's ``OneCycleLR`` defaults).
"""

from __future__ import annotations

import numpy as np

SCHEDULES = ("constant", "step", "cosine", "onecycle")


def _cosine(start, end, frac):
    return end + (start - end) * 0.5 * (1.0 + np.cos(np.pi * frac))


def learning_rates(schedule: str, lr: float, total: int) -> np.ndarray:
    """The ``total`` per-step rates (float64) of ``schedule`` with base rate ``lr``."""
    s = np.arange(total, dtype=np.float64)
    if schedule == "constant":
        factor = np.ones(total)
    elif schedule == "step":
        factor = np.where(s >= 0.75 * total, 0.01, np.where(s >= 0.5 * total, 0.1, 1.0))
    elif schedule == "cosine":
        factor = _cosine(1.0, 0.0, s / max(total, 1))
    elif schedule == "onecycle":
        warm = max(int(0.3 * total), 1)
        rise = _cosine(1 / 25, 1.0, s / warm)
        fall = _cosine(1.0, 1 / 25e4, (s - warm) / max(total - warm, 1))
        factor = np.where(s < warm, rise, fall)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return lr * factor
