"""Classification metrics computed with NumPy alone.

Everything derives from the confusion matrix, so the figures agree with each
other by construction.  Conventions match scikit-learn with
``labels=range(n_classes)`` and ``zero_division=0``: a class that is never
predicted has precision 0, a class absent from ``y_true`` has recall 0, and
macro averages run over all ``n_classes`` classes, present or not.
"""

from __future__ import annotations

import numpy as np

from .errors import FastnnError


def _check_labels(y_true, y_pred, n_classes) -> tuple[np.ndarray, np.ndarray]:
    """Return both label arrays as int64 after checking they are usable."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise FastnnError(f"n_classes must be a positive integer, got {n_classes!r}")
    arrays = []
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        y = np.asarray(y)
        if y.ndim != 1:
            raise FastnnError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise FastnnError(f"{name} must hold integer class indices, got dtype {y.dtype}")
        arrays.append(y.astype(np.int64))
    y_true, y_pred = arrays
    if len(y_true) != len(y_pred):
        raise FastnnError(f"y_true and y_pred differ in length: {len(y_true)} vs {len(y_pred)}")
    if len(y_true) == 0:
        raise FastnnError("cannot compute metrics on zero samples")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= n_classes:
            raise FastnnError(f"{name} labels must lie in 0..{n_classes - 1}, found {int(y.min())}..{int(y.max())}")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``(n_classes, n_classes)`` int64: row = true class, column = predicted class."""
    y_true, y_pred = _check_labels(y_true, y_pred, n_classes)
    # Each (true, pred) pair gets a unique flat index, so one bincount counts them all.
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0.0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    num = num.astype(np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def classification_report(y_true, y_pred, n_classes: int, class_names=None) -> dict:
    """Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix.

    Returns a JSON-serialisable dict (plain ints, floats and lists) with keys
    ``accuracy``, ``precision``, ``recall``, ``f1`` (macro averages),
    ``precision_weighted``, ``recall_weighted``, ``f1_weighted`` (weighted by
    support), ``per_class`` (one dict per class: ``class``, ``name``,
    ``precision``, ``recall``, ``f1``, ``support``), ``confusion_matrix``
    (list of rows) and ``n`` (number of samples).
    """
    if class_names is None:
        class_names = [str(k) for k in range(n_classes)]
    cm = confusion_matrix(y_true, y_pred, n_classes)
    if len(class_names) != n_classes:
        raise FastnnError(f"got {len(class_names)} class names for {n_classes} classes")

    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    n = int(support.sum())
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # 2tp / (2tp + fp + fn) equals the harmonic mean of precision and recall
    # but is exact and needs no special case when both are 0.
    f1 = _safe_divide(2 * tp, predicted + support)

    def weighted(values):
        return float(np.dot(values, support) / n)

    per_class = [
        {
            "class": k,
            "name": str(class_names[k]),
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k in range(n_classes)
    ]
    return {
        "accuracy": float(tp.sum() / n),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "precision_weighted": weighted(precision),
        "recall_weighted": weighted(recall),
        "f1_weighted": weighted(f1),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "n": n,
    }
