"""The backends' argument checks: both refuse the same bad call with the same error.

The compiled kernels index without bounds checks, so the numba backend must
refuse inconsistent arrays before they reach compiled code; the reference
runs the same checks, so a caller sees one behaviour whichever backend runs.
Errors are ``ValueError``: a kernel called with mismatched buffers is a
programming error, not a user's bad input.  The numba backend's layout helpers
(:func:`f32`, :func:`outputs`: float32, C-contiguous) live here too, for its modules to share.
"""

from __future__ import annotations

import contextlib

import numpy as np

_SHAPES = {"Xb": "md", "W1": "dh", "b1": "h", "W2": "hc", "dW2": "hc", "b2": "c",
           "A1": "mh", "dA1": "mh", "logits": "mc", "dlogits": "mc"}


def check_labels(y, n_classes: int, n: int) -> None:
    """Labels index the logits' columns in compiled code: they must lie in [0, c)."""
    if np.shape(y) != (n,):
        raise ValueError(f"expected {n} labels, got shape {np.shape(y)}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), found {y.min()}..{y.max()}")


def check_shapes(**arrays):
    """Refuse arrays whose shapes disagree: the compiled kernels index without bounds checks.

    Each array's axes are named (m batch, d features, h hidden, c classes) and
    every name must mean the same length everywhere.
    """
    sizes = {}
    for name, a in arrays.items():
        axes = _SHAPES[name]
        shape = np.shape(a)
        if len(shape) != len(axes):
            raise ValueError(f"{name} must have {len(axes)} dimensions, got shape {shape}")
        for axis, n in zip(axes, shape):
            if sizes.setdefault(axis, (n, name))[0] != n:
                raise ValueError(f"{name} has shape {shape}, which does not match "
                                 f"{sizes[axis][1]} (shape {np.shape(arrays[sizes[axis][1]])})")


# --- the numba backend's argument layout -----------------------------------------

def f32(a):
    """Inputs as C-contiguous float32: the compiled kernels address flat buffers by row stride.

    A no-op for the arrays the training loop passes; other layouts are copied.
    """
    a = np.asarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"the numba backend computes in float32, got an array of {a.dtype}")
    return np.ascontiguousarray(a)


@contextlib.contextmanager
def outputs(*arrays):
    """Yield C-contiguous float32 stand-ins for output arrays; copy back any that were not."""
    work = [f32(a) for a in arrays]
    yield work
    for a, w in zip(arrays, work):
        if w is not a:
            a[...] = w
