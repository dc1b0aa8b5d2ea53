"""The backends' argument checks: both refuse the same bad call with the same error.

The compiled kernels index without bounds checks, so the numba backend must
refuse inconsistent arrays before they reach compiled code; the reference
runs the same checks, so a caller sees one behaviour whichever backend runs.
A kernel called with mismatched buffers is a programming error, not a user's
bad input: shapes and ranges raise ``ValueError`` (``IndexError`` for an index
out of range), a dtype other than the parameters' raises ``TypeError`` (the
kernels compute in the parameters' dtype and never convert silently).
"""

from __future__ import annotations

import numpy as np

from ..activations import HEADS


def _check_dtype(name: str, a, dtype) -> None:
    if np.asarray(a).dtype != dtype:
        raise TypeError(f"{name} is {np.asarray(a).dtype}, but the network computes in {dtype}")


def _check_rows(name: str, a, n_features: int, dtype) -> None:
    if np.ndim(a) != 2 or np.shape(a)[1] != n_features:
        raise ValueError(f"{name} must have shape (n, {n_features}), got {np.shape(a)}")
    _check_dtype(name, a, dtype)


def check_targets(head: str, Z, targets, dZ=None) -> None:
    """Targets of ``len(Z)`` rows that ``head`` can train on, and a gradient array shaped as ``Z``."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}")
    m, c = np.shape(Z)
    if dZ is not None and np.shape(dZ) != (m, c):
        raise ValueError(f"the output gradient has shape {np.shape(dZ)}, expected {(m, c)}")
    _check_target_rows(head, targets, m, c, np.asarray(Z).dtype)


def _check_target_rows(head: str, targets, n: int, c: int, dtype) -> None:
    labels, values, weights = targets
    if np.shape(weights) != (n,):
        raise ValueError(f"expected {n} sample weights, got shape {np.shape(weights)}")
    _check_dtype("sample weights", weights, dtype)
    if head == "softmax":
        if np.shape(labels) != (n,) or np.asarray(labels).dtype != np.int64:
            raise ValueError(
                f"the softmax head needs {n} int64 labels, got {np.asarray(labels).dtype} {np.shape(labels)}"
            )
        if n and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f"labels must lie in [0, {c}), found {labels.min()}..{labels.max()}")
    else:
        if np.shape(values) != (n, c):
            raise ValueError(f"the {head} head needs targets of shape {(n, c)}, got {np.shape(values)}")
        _check_dtype("targets", values, dtype)


def check_network_call(
    net, *, X=None, Xb=None, ws=None, out=None, targets=None, perm=None, start=0, stop=0, batch_size=1, lrs=None
) -> int:
    """Refuse arrays that do not fit ``net`` (and each other); returns the number of batches
    of ``batch_size`` in ``[start, stop)``."""
    layout, dtype = net.params.layout, net.params.dtype
    d, c = layout.sizes[0], layout.sizes[-1]
    if ws is not None and ws.shape[1] != layout:
        raise ValueError(f"the workspace was made for a {ws.shape[1]}, not this network's {layout}")
    if Xb is not None:
        _check_rows("the batch", Xb, d, dtype)
        if ws is not None and len(Xb) > ws.shape[0]:
            raise ValueError(f"a batch of {len(Xb)} rows does not fit the workspace's {ws.shape[0]}")
    if out is not None:
        if X is None or np.shape(out) != (len(X), c):
            raise ValueError(f"out must have shape {(len(X) if X is not None else 'n', c)}, got {np.shape(out)}")
        _check_dtype("out", out, dtype)
    if X is not None:
        _check_rows("X", X, d, dtype)
    if perm is None:
        return 0
    n = len(X)
    if not 0 <= start <= stop <= len(perm):
        raise ValueError(f"sample range [{start}, {stop}) does not lie in the permutation's {len(perm)}")
    if stop > start and (perm[start:stop].min() < 0 or perm[start:stop].max() >= n):
        raise IndexError("permutation index out of range")  # compiled code does not bounds-check
    if batch_size < 1 or min(batch_size, stop - start) > ws.shape[0]:
        raise ValueError(f"batches of {batch_size} do not fit the workspace's {ws.shape[0]} rows")
    _check_target_rows(net.head, targets, n, c, dtype)
    n_steps = -(-(stop - start) // batch_size)
    if np.shape(lrs) != (n_steps,):
        raise ValueError(f"expected {n_steps} learning rates, one per batch, got shape {np.shape(lrs)}")
    return n_steps
