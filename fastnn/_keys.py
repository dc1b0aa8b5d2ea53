"""Counter-based randomness: every random choice of a run is a pure function of (seed, epoch, index).

Nothing in training holds a random generator's state.  The epoch shuffle and
the augmentation draws are computed from keys, so any sample's draws can be
made on any thread in any order, both backends draw the same values, and a run
resumed at epoch ``e`` draws exactly what it would have drawn uninterrupted.

One mixer, SplitMix64's finaliser (:func:`mix`), and one increment,
:data:`GOLDEN` (2**64 / the golden ratio, odd), build every key here.  The
array functions use NumPy ``uint64`` operations only, so the numba backend
compiles these very functions (``njit(mix)``) instead of keeping a copy.

* The **epoch shuffle** is a keyed bijection: a balanced Feistel network over
  ``[0, 4**k)`` (the smallest such domain holding ``n``), restricted to
  ``[0, n)`` by cycle walking.  Each output position depends only on its own
  index, which lets it be computed in parallel, and it is a permutation by
  construction (a Feistel network is invertible, and cycle walking a
  permutation onto a subset keeps it one).  Six rounds of a strong 64-bit
  mixer are ample for shuffling training data (this is not cryptography).
* **Augmentation** draws ``u_j`` of sample ``i`` in epoch ``e`` are
  ``(mix(k_i + (j + 1) GOLDEN) >> 11) 2**-53`` with ``k_i = mix(epoch_key(seed, e) + i GOLDEN)``
  (see :mod:`fastnn.augment`).
* **Dropout** draws are the same construction under another salt: unit ``j`` of
  training row ``i`` in epoch ``e`` is dropped when ``u_j < p``, with
  ``k_i = mix(epoch_key(seed, e, _DROPOUT_SALT) + i GOLDEN)`` (see :mod:`fastnn.dropout`).
"""

from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
N_ROUNDS = 6
_AUGMENT_SALT = 0xA076_1D64_78BD_642F  # keeps the augmentation stream apart from the shuffle's
_DROPOUT_SALT = 0xE703_7ED1_A0B4_28DB  # keeps the dropout stream apart from both


def splitmix64(z: int) -> int:
    """SplitMix64's finaliser on a Python int (mod 2**64); :func:`mix` is the same on ``uint64``."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mix(z):
    """SplitMix64's finaliser on ``uint64`` arrays (and on scalars in compiled code), mod 2**64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# --- the epoch shuffle -------------------------------------------------------------------


def round_keys(seed: int, epoch: int) -> np.ndarray:
    """The :data:`N_ROUNDS` 64-bit Feistel round keys of one epoch of one seed (``uint64``)."""
    base = splitmix64(splitmix64(seed) ^ ((epoch * GOLDEN) & MASK64))
    return np.array([splitmix64(base + r * GOLDEN) for r in range(N_ROUNDS)], np.uint64)


def half_bits(n: int) -> int:
    """Bits per Feistel half: the smallest k >= 1 with 4**k >= n."""
    k = 1
    while (1 << (2 * k)) < n:
        k += 1
    return k


def feistel(x, keys, k):
    """One pass of the keyed Feistel bijection on ``[0, 4**k)`` (``uint64`` scalar or array)."""
    mask = np.uint64((1 << k) - 1)
    left = x >> np.uint64(k)
    right = x & mask
    for key in keys:
        left, right = right, left ^ (mix(right ^ key) & mask)
    return (left << np.uint64(k)) | right


# --- augmentation and dropout keys -------------------------------------------------------


def epoch_key(seed: int, epoch: int, salt: int = _AUGMENT_SALT) -> int:
    """The 64-bit key of one epoch's distortions (a Python int); with ``salt=_DROPOUT_SALT``,
    of its dropout masks."""
    return splitmix64(splitmix64(seed ^ salt) ^ ((epoch * GOLDEN) & MASK64))


def sample_key(ekey, i):
    """Sample ``i``'s key ``k_i`` under the epoch key ``ekey`` (``uint64`` scalars or arrays)."""
    return mix(ekey + i * np.uint64(GOLDEN))


def uniform(key, j):
    """Draw ``j`` (``uint64``) of the sample with key ``key``: uniform in [0, 1), exact in float64."""
    return np.float64(mix(key + (j + np.uint64(1)) * np.uint64(GOLDEN)) >> np.uint64(11)) * 2.0**-53
