"""Backend registry: the one place a backend is chosen by name.

A backend is a module exposing the same kernels with the same signatures
(:data:`KERNELS`), and the same thread controls (:data:`CONTROLS`);
``tests/test_backend_contract.py`` checks both modules against them.  The training loop only ever calls :func:`get_backend` and those
names.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import FastnnError

_MODULES = {
    "numpy": "fastnn.backends.numpy_backend",
    "numba": "fastnn.backends.numba_backend",
}

BACKENDS = tuple(_MODULES)

#: The backend used wherever none is named: training, prediction, the CLI and the estimator.
DEFAULT_BACKEND = "numba"

KERNELS = (
    "permutation",
    "gather",
    "forward",
    "loss",
    "backward",
    "update",
    "make_workspace",
    "train_steps",
    "predict",
    "augment",
)

#: What every backend exports besides its kernels: its thread controls, and whether its first
#: training call will wait for a compile (so callers can say so without naming backends).
CONTROLS = ("set_threads", "thread_info", "kernels_cached")


def get_backend(name: str) -> ModuleType:
    """Return the backend module called ``name`` (``"numpy"`` or ``"numba"``)."""
    if name not in _MODULES:
        raise FastnnError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == _MODULES[name]:
            raise FastnnError(f"the {name} backend is not implemented yet") from None
        raise FastnnError(f"the {name} backend needs the package {exc.name!r}: pip install {exc.name}") from None
