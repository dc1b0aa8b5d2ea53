"""The grid of a sweep: parsing ``--grid field=a,b``, checking it before any cluster starts, the trials."""

from __future__ import annotations

import dataclasses
import itertools

from ..backends import DEFAULT_BACKEND
from ..config import TrainConfig
from ..errors import FastnnError, option

#: TrainConfig fields a sweep may vary or fix (log_every only adds history rows).
FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "log_every")
_TYPES = {f.name: f.metadata["type"] for f in dataclasses.fields(TrainConfig)}  # as fastnn train parses them
#: Columns of the result table after the config, in order.
RESULT_COLUMNS = (
    "dev_accuracy",
    "dev_f1",
    "test_accuracy",
    "test_f1",
    "epochs_run",
    "train_seconds",
    "threads",
    "worker",
    "error",
)


# --------------------------------------------------------------------------
# The grid: parsing and validation (client side, before any cluster exists)
# --------------------------------------------------------------------------


def parse_grid(items) -> dict:
    """``["hidden=128,256", "lr=0.1,0.5"]`` -> ``{"hidden": ["128", "256"], "lr": ["0.1", "0.5"]}``.

    Values are separated by commas; a network of several hidden layers is one value with its
    layers joined by dashes, as in 784-100-100-10: ``hidden=256,100-100,1000-500``.  Values
    stay strings here; :func:`check_grid` converts them to the field's type.
    """
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise FastnnError(f"--grid takes FIELD=V1,V2,..., got {item!r}")
        if name in grid:
            raise FastnnError(f"--grid {name} is given twice; list all its values in one --grid")
        grid[name] = [v.strip() for v in values.split(",")] if values.strip() else []
    return grid


def _convert(name: str, value):
    """``value`` as the type of TrainConfig's field ``name`` (strings from the command line are parsed)."""
    kind = _TYPES[name]
    if kind not in (int, float, str):  # a field with its own parser (hidden's layer sizes): a tuple
        import numpy as np

        if isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            return kind(value)
        except ValueError as exc:
            raise FastnnError(f"{name}: {exc}") from None
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise FastnnError(f"{name} takes {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()  # plain Python values in the table and the JSON
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FastnnError(f"{name} takes {kind.__name__} values, got {value!r}")
    return value


def _check_field(name: str, where: str) -> None:
    if name not in FIELDS:
        raise FastnnError(f"{where} {name!r} is not a training option; choose from {', '.join(FIELDS)}")


def check_grid(grid: dict, fixed: dict | None = None, seeds: int = 1) -> tuple[dict, dict]:
    """Validate a grid and the fixed options; return both with values converted to the fields' types.

    Raises :class:`FastnnError` for an unknown field, a value of the wrong type
    or out of range, an empty or repeated value list, a field both fixed and
    varied, or ``seed`` in the grid together with ``seeds > 1``.
    """
    if not isinstance(grid, dict) or not grid:
        raise FastnnError(
            "the grid is empty: give at least one field and its values, "
            "e.g. {'hidden': [128, (100, 100)]} or --grid hidden=128,100-100"
        )
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise FastnnError(f"{option('seeds')} must be a positive integer (repeats per grid point), got {seeds!r}")
    fixed = dict(fixed or {})
    for name in fixed:
        _check_field(name, "fixed option")
    fixed = {name: _convert(name, value) for name, value in fixed.items()}
    checked = {}
    for name, values in grid.items():
        _check_field(str(name), "grid field")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = [_convert(name, v) for v in values]
        if not values:
            raise FastnnError(f"grid field {name!r} has no values")
        if len(set(values)) != len(values):
            raise FastnnError(f"grid field {name!r} lists a value twice: {values}")
        if name in fixed:
            raise FastnnError(f"{name} is both fixed and varied; give it in the grid only")
        checked[name] = values
    if "backend" not in checked:
        fixed.setdefault("backend", DEFAULT_BACKEND)
    if "seed" in checked and seeds > 1:
        raise FastnnError(f"seed is in the grid, so {option('seeds')} (repeats with consecutive seeds) must be 1")
    # Every value must pass its option's rule (lr=-1, optimizer=foo, ...), and every grid point
    # must make a valid config (augment_flip=0.5 needs augment=affine or elastic).
    TrainConfig(**fixed).validate_fields()
    for name, values in checked.items():
        for value in values:
            TrainConfig(**{**fixed, name: value}).validate_fields()
    names = list(checked)
    for point in itertools.product(*checked.values()):
        TrainConfig(**{**fixed, **dict(zip(names, point))}).validate()
    return checked, fixed


def make_trials(grid: dict, fixed: dict, seeds: int = 1) -> list[dict]:
    """Every grid point (in grid order, last field fastest) times ``seeds`` consecutive seeds."""
    names = list(grid)
    base_seed = fixed.get("seed", 0)
    trials = []
    for point in itertools.product(*(grid[n] for n in names)):
        for k in range(seeds if "seed" not in grid else 1):
            config = {**fixed, **dict(zip(names, point))}
            if "seed" not in grid:
                config["seed"] = base_seed + k
            trials.append({field: config[field] for field in FIELDS if field in config})
    return trials
