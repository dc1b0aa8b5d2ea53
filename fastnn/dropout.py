"""Dropout: the exact definition both backends implement.

**Inverted dropout on the hidden layers' outputs**, inside training steps only.
With rate ``p`` in [0, 1), each hidden unit's output for one training image in
one epoch is either dropped (set to 0) or kept and scaled by ``1 / (1 - p)``, so
that its expected value is the unit's output without dropout.  Evaluation,
prediction and exported models never drop anything: dropout exists only inside
the backends' ``train_steps`` (the network's weights are used as they are).

Which units are dropped is counter-based, like the epoch shuffle and the
augmentation (:mod:`fastnn._keys`).  For a run with seed ``s``, in epoch ``e``
(0 for the first), the unit ``u`` (0-based) of hidden layer ``l`` (1 for the first
hidden layer) for **training row** ``i`` (the row's index in the training set,
not its place in the shuffled batch) is dropped when ``u_{i,j} < p``, where

* ``j = h_1 + ... + h_{l-1} + u`` is the unit's index among all hidden units
  (``h_k`` the width of hidden layer ``k``);
* ``K_e = splitmix64(splitmix64(s XOR DROPOUT_SALT) XOR (e * GOLDEN mod 2**64))``
  is the epoch's dropout key (:func:`fastnn._keys.epoch_key` with
  ``salt=_keys._DROPOUT_SALT``, ``DROPOUT_SALT = 0xE7037ED1A0B428DB``);
* ``k_i = mix(K_e + i * GOLDEN)`` is the row's key (:func:`fastnn._keys.sample_key`);
* ``u_{i,j} = (mix(k_i + (j + 1) * GOLDEN) >> 11) * 2**-53``, uniform in [0, 1) and
  exact in float64 (:func:`fastnn._keys.uniform`);

with ``mix`` SplitMix64's finaliser and all integer arithmetic mod 2**64
(``GOLDEN = 0x9E3779B97F4A7C15``).  A mask thus depends only on (seed, epoch,
row, layer, unit): not on the shuffle, the batch size, the backend or the thread
count, and a run resumed at epoch ``e`` draws what it would have drawn
uninterrupted.  The salt keeps these draws independent of the augmentation's,
which use the same construction under ``_AUGMENT_SALT``.  With ``p = 0`` every
unit is kept and nothing is computed at all: training is bit for bit what it is
without dropout.

In a training step, with ``a = f(z)`` a hidden layer's activation and ``k`` its
keep mask (1 kept, 0 dropped), the layer passes on ``a' = a k / (1 - p)``; the
backward pass turns the gradient ``g`` arriving at ``a'`` into ``g k / (1 - p)
f'(z)``, with ``f'(z)`` written through the *unmasked* activation ``a``
(:mod:`fastnn.activations`).  The reference backend keeps ``a`` beside ``a'`` and
multiplies by ``k / (1 - p)`` (rounded to the network's dtype); the numba backend
keeps ``a k`` and applies ``1 / (1 - p)`` as the factor of the products that read
it (the next layer's forward product, its weight gradient and the gradient passed
back), the same values up to rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _keys

#: The salt of the dropout stream (see the module).
DROPOUT_SALT = _keys._DROPOUT_SALT


class Dropout(NamedTuple):
    """One epoch's dropout, as the backends' ``train_steps`` take it: the rate ``p`` and the
    epoch's key ``K_e`` (a Python int below 2**64)."""

    rate: float
    key: int

    @property
    def scale(self) -> float:
        """``1 / (1 - p)``, what kept outputs are multiplied by (float64)."""
        return 1.0 / (1.0 - self.rate)


def for_epoch(rate: float, seed: int, epoch: int) -> Dropout | None:
    """Epoch ``epoch``'s :class:`Dropout` of a run with ``seed``, or None when ``rate`` is 0."""
    rate = float(rate)
    if not 0.0 <= rate < 1.0:  # also NaN
        raise ValueError(f"dropout must be a probability in [0, 1), got {rate!r}")
    if rate == 0.0:
        return None
    return Dropout(rate, _keys.epoch_key(int(seed), int(epoch), DROPOUT_SALT))


def keep_masks(drop: Dropout, rows, hidden) -> list[np.ndarray]:
    """The keep masks (bool, True for kept) of the training rows ``rows`` for hidden layers of
    the widths ``hidden``: one ``(len(rows), h_l)`` array per hidden layer."""
    rows = np.asarray(rows, dtype=np.int64)
    keys = _keys.sample_key(np.uint64(drop.key), rows.astype(np.uint64))
    j = np.arange(sum(hidden), dtype=np.uint64)
    keep = _keys.uniform(keys[:, None], j[None, :]) >= drop.rate
    return np.split(keep, np.cumsum(hidden)[:-1], axis=1) if len(hidden) else []


def multipliers(drop: Dropout, rows, hidden, dtype) -> list[np.ndarray]:
    """``k / (1 - p)`` in ``dtype`` for each hidden layer (see :func:`keep_masks`): what the
    reference backend multiplies the layers' outputs and gradients by."""
    scale = np.asarray(drop.scale, dtype=dtype)
    return [np.where(keep, scale, np.zeros((), dtype)) for keep in keep_masks(drop, rows, hidden)]
