"""ONNX through skl2onnx: fastnn's estimators converted by skl2onnx's own MLP converters.

The fitted attributes those converters read (``coefs_``, ``intercepts_``,
``n_layers_``, ``activation``, ``out_activation_``, ``classes_`` and the label
binarizer's target type) are scikit-learn's, so registering the classes is all
it takes::

    from fastnn.estimator.onnx import register_skl2onnx
    from skl2onnx import to_onnx

    register_skl2onnx()
    onx = to_onnx(clf, X[:1].astype(np.float32))

Also inside a ``Pipeline``.  Needs skl2onnx (``pip install fastnn[sklearn-onnx]``).
skl2onnx has no operator for the Poisson loss's exponential output, so a
``MLPRegressor(loss="poisson")`` does not convert; ``fastnn.export_onnx(est.network_)``
is fastnn's own export of a classifier's network.
"""

from __future__ import annotations

from .classifier import MLPClassifier
from .regressor import MLPRegressor

#: skl2onnx's options for MLPClassifier's converter, as it registers them.
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}


def register_skl2onnx() -> None:
    """Register :class:`MLPClassifier` and :class:`MLPRegressor` with skl2onnx's MLP converters."""
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.operator_converters.multilayer_perceptron import (
            convert_sklearn_mlp_classifier,
            convert_sklearn_mlp_regressor,
        )
        from skl2onnx.shape_calculators.linear_classifier import calculate_linear_classifier_output_shapes
        from skl2onnx.shape_calculators.linear_regressor import calculate_linear_regressor_output_shapes
    except ImportError as exc:
        raise ImportError(
            "converting fastnn's estimators to ONNX needs skl2onnx: pip install skl2onnx (or fastnn[sklearn-onnx])"
        ) from exc
    update_registered_converter(
        MLPClassifier,
        "FastnnMLPClassifier",
        calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        options=CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        MLPRegressor, "FastnnMLPRegressor", calculate_linear_regressor_output_shapes, convert_sklearn_mlp_regressor
    )
