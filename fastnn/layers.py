"""A network's parameters: every layer's weights and biases in one flat buffer.

A network of layer sizes ``(d, h1, ..., hk, c)`` has ``k + 1`` weight layers;
layer ``i`` maps ``sizes[i]`` units to ``sizes[i + 1]`` with ``coefs[i]
(fan_in, fan_out)`` and ``intercepts[i] (fan_out,)``, as scikit-learn's
``coefs_`` and ``intercepts_``.  :class:`Params` keeps all of them in one
C-contiguous buffer (:class:`Layout` says where each one starts, every block
on a 64-byte boundary) and hands out views, so that:

* the compiled backend receives one array and a table of offsets, whatever
  the depth (numba compiles a kernel per argument *type*: one buffer means one
  compile for every depth);
* optimizer state and gradients are :class:`Params` of the same layout;
* copying, saving or checkpointing a network is one array.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from . import _aligned

_BLOCK_ALIGN_BYTES = _aligned.ALIGN


class Layout:
    """Where the weights and biases of a network of layer ``sizes`` live in a flat buffer.

    ``sizes`` is ``(n_features, *hidden, n_outputs)``.  ``w_offsets[i]`` and
    ``b_offsets[i]`` are the element offsets of ``coefs[i]`` and
    ``intercepts[i]``; ``table`` holds them as an ``int64`` array ``(n_layers,
    2)`` for compiled code, ``sizes_array`` the sizes.
    """

    def __init__(self, sizes, dtype=np.float32):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer sizes must be at least two positive integers, got {sizes}")
        self.sizes = sizes
        self.dtype = np.dtype(dtype)
        align = max(1, _BLOCK_ALIGN_BYTES // self.dtype.itemsize)
        offsets, at = [], 0
        for fan_in, fan_out in pairwise(sizes):
            w = at
            at = -(-(w + fan_in * fan_out) // align) * align
            b = at
            at = -(-(b + fan_out) // align) * align
            offsets.append((w, b))
        self.size = at
        self.table = np.array(offsets, np.int64).reshape(-1, 2)
        self.sizes_array = np.array(sizes, np.int64)

    @property
    def n_layers(self) -> int:
        """Weight layers (hidden layers + 1)."""
        return len(self.sizes) - 1

    @property
    def w_offsets(self) -> tuple:
        return tuple(int(w) for w in self.table[:, 0])

    @property
    def b_offsets(self) -> tuple:
        return tuple(int(b) for b in self.table[:, 1])

    def views(self, flat: np.ndarray) -> tuple[tuple, tuple]:
        """``(coefs, intercepts)``: views of ``flat`` shaped as each layer's weights and biases."""
        coefs = tuple(
            flat[w : w + fi * fo].reshape(fi, fo) for (w, _), fi, fo in zip(self.table, self.sizes[:-1], self.sizes[1:])
        )
        intercepts = tuple(flat[b : b + fo] for (_, b), fo in zip(self.table, self.sizes[1:]))
        return coefs, intercepts

    def __eq__(self, other) -> bool:
        return isinstance(other, Layout) and (self.sizes, self.dtype) == (other.sizes, other.dtype)

    def __repr__(self) -> str:
        return f"Layout({'-'.join(map(str, self.sizes))}, {self.dtype.name})"


class Params:
    """The weights and biases of every layer, as views of one flat buffer (see the module)."""

    def __init__(self, layout: Layout, flat: np.ndarray | None = None):
        if flat is None:
            flat = _aligned.zeros(layout.size, layout.dtype)
        elif flat.shape != (layout.size,) or flat.dtype != layout.dtype:
            raise ValueError(
                f"a {layout} needs a flat {layout.dtype} buffer of {layout.size}, got {flat.dtype} {flat.shape}"
            )
        self.layout = layout
        self.flat = _aligned.aligned(flat, layout.dtype)
        self.coefs, self.intercepts = layout.views(self.flat)

    @classmethod
    def from_arrays(cls, coefs, intercepts, dtype=np.float32) -> Params:
        """Params holding copies of ``coefs`` (each ``(fan_in, fan_out)``) and ``intercepts``."""
        coefs = [np.asarray(W) for W in coefs]
        intercepts = [np.asarray(b) for b in intercepts]
        if len(coefs) != len(intercepts) or not coefs:
            raise ValueError(
                f"expected as many intercepts as coefs (at least one), got {len(coefs)} and {len(intercepts)}"
            )
        sizes = [coefs[0].shape[0] if coefs[0].ndim == 2 else -1]
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            if W.ndim != 2 or W.shape[0] != sizes[-1] or b.shape != (W.shape[1],):
                raise ValueError(
                    f"layer {i}: weights {W.shape} and biases {b.shape} do not follow a layer of {sizes[-1]} units"
                )
            sizes.append(W.shape[1])
        params = cls(Layout(sizes, dtype))
        for dst, src in zip(params.coefs + params.intercepts, coefs + intercepts):
            dst[...] = src
        return params

    @property
    def dtype(self) -> np.dtype:
        return self.layout.dtype

    def copy(self) -> Params:
        """An independent copy."""
        return Params(self.layout, self.flat.copy())

    def like(self) -> Params:
        """Zeros of the same layout (for gradients and optimizer state)."""
        return Params(self.layout)

    def astype(self, dtype) -> Params:
        """The same values in another dtype (a copy)."""
        out = Params(Layout(self.layout.sizes, dtype))
        for dst, src in zip(out.coefs + out.intercepts, self.coefs + self.intercepts):
            dst[...] = src
        return out

    def blocks(self):
        """``(weights, biases)`` of each layer: the parameters as the update rules see them."""
        return zip(self.coefs, self.intercepts)

    def squared_norm(self) -> float:
        """The sum of the squared weights (not biases), in float64: the L2 penalty's norm."""
        return float(sum(np.dot(W.ravel().astype(np.float64), W.ravel().astype(np.float64)) for W in self.coefs))
