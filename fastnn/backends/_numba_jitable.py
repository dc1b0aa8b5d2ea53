"""What compiled code calls that is not itself a kernel: typed scalars, and fastnn's random keys.

* ``like(a, 0.0)`` is ``0.0`` in the dtype of the array ``a``, decided when the
  kernel is compiled.  A literal such as ``0.0`` is a float64 in compiled code,
  and mixing it into float32 arithmetic promotes the whole expression to
  float64 (slow, and not the reference's rounding).
* The random-key functions of :mod:`fastnn._keys` (SplitMix64, the Feistel
  shuffle, the augmentation draws) are written once, in NumPy ``uint64``
  operations, and registered here so that compiled code calls those very
  functions: ``_keys`` itself stays free of numba.
"""

from __future__ import annotations

from numba.extending import overload, register_jitable

from .. import _keys
from ._numba_setup import CACHE

for _function in (_keys.mix, _keys.feistel, _keys.sample_key, _keys.uniform):
    register_jitable(cache=CACHE)(_function)


def like(a, value):
    """``value`` converted to the dtype of the array ``a`` (compiled code only)."""
    raise NotImplementedError("like() is called from numba-compiled code only")


@overload(like, jit_options={"cache": CACHE})
def _like(a, value):
    dtype = a.dtype

    def impl(a, value):
        return dtype(value)

    return impl
