"""GEMM called from numba-compiled code, in the arrays' own dtype, and the thread pin that makes it safe.

Numba cannot beat a tuned GEMM, but an ``@njit(parallel=True)`` region that
calls a multithreaded BLAS makes two thread pools fight over the same cores
(we measured 50x slower than NumPy).  So ``sgemm`` (float32) and ``dgemm``
(float64) are called straight from compiled code through SciPy's BLAS
(``scipy.linalg.cython_blas``), that library is pinned to one thread while our
training kernels run (:func:`blas_threads`), and the parallelism is ours.  Prediction,
which is a chain of large products, runs serially and lets BLAS use the backend's threads.

:func:`gemm` picks the routine from the arrays' dtype when a kernel is
compiled, so every kernel specialises per dtype with no branch at run time.
"""

from __future__ import annotations

import contextlib
import os

import llvmlite.binding
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS we call, so threadpoolctl can see it)
from numba.core import types
from numba.extending import get_cython_function_address, overload

from ._numba_setup import CACHE, kernel

# Bound by symbol name rather than as a ctypes pointer: compiled code that holds a
# ctypes pointer cannot be cached, code that calls a named symbol can.
_ROUTINES = {}
for _name in ("sgemm", "dgemm"):
    _symbol = f"fastnn_scipy_{_name}"
    llvmlite.binding.add_symbol(_symbol, get_cython_function_address("scipy.linalg.cython_blas", _name))
    _ROUTINES[_name] = types.ExternalFunction(_symbol, types.void(*([types.voidptr] * 13)))
_sgemm, _dgemm = _ROUTINES["sgemm"], _ROUTINES["dgemm"]
# NumPy scalars, not ints: numba types an int global as a literal of its own value, so every
# pair of transpose flags would compile gemm once more (~0.3 s each on the first run).
N, T = np.int64(ord("N")), np.int64(ord("T"))


def _fortran_args(ta, tb, m, n, k, alpha, beta, lda, ldb, ldc, dtype):
    """The call's characters, sizes and scalars as the small arrays Fortran takes pointers to.

    Fortran GEMM is column-major, so it is asked for ``C^T = op(B)^T op(A)^T``.
    """
    chars = np.empty(2, np.uint8)
    chars[0] = tb
    chars[1] = ta
    ints = np.empty(6, np.int32)
    ints[0] = n
    ints[1] = m
    ints[2] = k
    ints[3] = ldb
    ints[4] = lda
    ints[5] = ldc
    scal = np.empty(2, dtype)
    scal[0] = alpha
    scal[1] = beta
    return chars, ints, scal


def _make_gemm(routine, dtype):
    @kernel(nogil=True)
    def _gemm(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
        if m == 0 or n == 0:
            return
        if k == 0:  # GEMM would leave C untouched with beta; keep the row-major meaning
            for i in range(m):
                for j in range(n):
                    C[c_off + i * ldc + j] *= beta
            return
        chars, ints, scal = _fortran_args_jit(ta, tb, m, n, k, alpha, beta, lda, ldb, ldc, dtype)
        routine(
            chars[0:].ctypes,
            chars[1:].ctypes,
            ints[0:].ctypes,
            ints[1:].ctypes,
            ints[2:].ctypes,
            scal[0:].ctypes,
            B[b_off:].ctypes,
            ints[3:].ctypes,
            A[a_off:].ctypes,
            ints[4:].ctypes,
            scal[1:].ctypes,
            C[c_off:].ctypes,
            ints[5:].ctypes,
        )

    return _gemm


_fortran_args_jit = kernel(inline="always")(_fortran_args)
_GEMMS = {"float32": _make_gemm(_sgemm, np.float32), "float64": _make_gemm(_dgemm, np.float64)}


def _call(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """The GEMM routine for ``A``'s dtype (resolved when the caller is compiled)."""
    raise NotImplementedError("compiled code only")


@overload(_call, jit_options={"cache": CACHE})
def _call_overload(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    impl = _GEMMS[str(A.dtype)]

    def call(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
        impl(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc)

    return call


@kernel()
def gemm(ta, tb, m, n, k, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """Row-major ``C = alpha * op(A) @ op(B) + beta * C`` on sub-matrices of flat buffers.

    ``A``, ``B``, ``C`` are C-contiguous arrays of one dtype (float32 or float64),
    of any rank; ``*_off`` is the flat offset of the sub-matrix's first element
    and ``ld*`` its row stride, so column blocks (a thread's slice of a layer)
    are passed without copying.  It casts every argument, so that each call reaches
    the routine for its dtype with the same types: the routine is compiled once
    however many places call it.  (Not inlined: a function inlined into kernels
    compiled in one process, some of them parallel, was cached in a form that
    crashed when a fresh process loaded it; numba 0.68.)
    """
    i64, f64 = np.int64, np.float64
    _call(
        i64(ta),
        i64(tb),
        i64(m),
        i64(n),
        i64(k),
        f64(alpha),
        A.ravel(),
        i64(a_off),
        i64(lda),
        B.ravel(),
        i64(b_off),
        i64(ldb),
        f64(beta),
        C.ravel(),
        i64(c_off),
        i64(ldc),
    )


def _scipy_blas_controllers():
    """threadpoolctl handles for the BLAS that numba's gemm calls (SciPy's), else all BLAS."""
    import scipy
    from threadpoolctl import ThreadpoolController

    blas = [lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"]
    # Wheels bundle SciPy's OpenBLAS in site-packages/scipy.libs (or inside scipy/); NumPy's
    # own copy lives elsewhere and is left alone, so the NumPy backend keeps its threads.
    scipy_dir = os.path.realpath(os.path.dirname(scipy.__file__))
    roots = (scipy_dir + os.sep, scipy_dir + ".libs" + os.sep)
    ours = [lc for lc in blas if os.path.realpath(lc.filepath).startswith(roots)]
    return ours or blas


_BLAS = None


@contextlib.contextmanager
def blas_threads(n: int = 1):
    """Set SciPy's BLAS to ``n`` threads for the duration (1 where the parallelism is ours)."""
    global _BLAS
    if _BLAS is None:
        _BLAS = _scipy_blas_controllers()
    before = [lc.num_threads for lc in _BLAS]
    for lc in _BLAS:
        lc.set_num_threads(n)
    try:
        yield
    finally:
        for lc, n in zip(_BLAS, before):
            lc.set_num_threads(n)
