"""Input arrays as the kernels take them: sample weights, and dense rows of the network's dtype.

scikit-learn's ``validate_data`` has checked ``X`` (finite, 2-D, numeric, at
least one row and feature) before anything here runs.  SciPy sparse ``X``
(CSR or CSC) is accepted, and handed to the kernels as dense rows: for
training the whole matrix at once, for prediction :data:`PREDICT_ROWS` rows at
a time.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

#: Rows of a sparse X made dense at a time when predicting.
PREDICT_ROWS = 4096


def check_sample_weight(sample_weight, n_samples: int):
    """``sample_weight`` as float64 ``(n_samples,)``, or None for unit weights; scikit-learn's
    errors for a wrong shape, negative weights, or weights that are all zero."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    sample_weight = check_array(
        sample_weight, accept_sparse=False, ensure_2d=False, dtype=np.float64, order="C", input_name="sample_weight"
    )
    if sample_weight.ndim != 1:
        raise ValueError(f"Sample weights must be 1D array or scalar, got {sample_weight.ndim}D array")
    if sample_weight.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected {(n_samples,)}!")
    if (sample_weight < 0).any():
        raise ValueError("Negative values in data passed to sample_weight")
    if not sample_weight.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sample_weight


def dense_rows(X, dtype) -> np.ndarray:
    """``X`` (an array or a SciPy sparse matrix) as a C-contiguous ``dtype`` array."""
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)


def head_outputs(net, X, backend: str) -> np.ndarray:
    """The network's outputs (after its head) for every row of ``X``, sparse or dense."""
    if not sp.issparse(X):
        return net.predict_proba(dense_rows(X, net.dtype), backend)
    X = X.tocsr()
    out = np.empty((X.shape[0], net.n_outputs), net.dtype)
    for lo in range(0, X.shape[0], PREDICT_ROWS):
        out[lo : lo + PREDICT_ROWS] = net.predict_proba(dense_rows(X[lo : lo + PREDICT_ROWS], net.dtype), backend)
    return out
