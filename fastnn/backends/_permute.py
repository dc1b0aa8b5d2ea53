"""Shared definition of the epoch shuffle, so both backends draw the same order.

The shuffle is a keyed bijection rather than a Fisher-Yates pass: a balanced
Feistel network over ``[0, 4**k)`` (the smallest such domain holding ``n``),
restricted to ``[0, n)`` by cycle walking.  Each output position depends only
on its own index, which is what lets the Numba backend compute it in parallel,
and it is a permutation by construction (a Feistel network is invertible, and
cycle walking a permutation onto a subset keeps it one).

Round keys come from ``(seed, epoch)`` through SplitMix64, so an epoch's order
is a pure function of the seed and the epoch number, identical in every
backend.  The round function is SplitMix64's finaliser: a strong 64-bit mixer,
which makes six rounds ample for shuffling training data (this is not crypto).
"""

from __future__ import annotations

N_ROUNDS = 6
_MASK64 = (1 << 64) - 1


def splitmix64(z: int) -> int:
    """SplitMix64 finaliser on a Python int (mod 2**64)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def round_keys(seed: int, epoch: int) -> list[int]:
    """The ``N_ROUNDS`` 64-bit Feistel round keys for one epoch of one seed."""
    base = splitmix64(splitmix64(seed) ^ (epoch * 0x9E3779B97F4A7C15))
    return [splitmix64(base + r * 0x9E3779B97F4A7C15) for r in range(N_ROUNDS)]


def half_bits(n: int) -> int:
    """Bits per Feistel half: the smallest k >= 1 with 4**k >= n."""
    k = 1
    while (1 << (2 * k)) < n:
        k += 1
    return k
