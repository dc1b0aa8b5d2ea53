"""Fitted estimators convert with skl2onnx (registered with its MLP converters), and the ONNX
model, run by onnxruntime, predicts what the estimator predicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn import MLPClassifier, MLPRegressor

skl2onnx = pytest.importorskip("skl2onnx", reason="the conversion needs skl2onnx (pip install fastnn[sklearn-onnx])")
ort = pytest.importorskip("onnxruntime", reason="running the converted model needs onnxruntime")

from fastnn.estimator.onnx import register_skl2onnx  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_skl2onnx()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:600], y[:600]


def run(model, X, classifier: bool):
    options = {id(model): {"zipmap": False}} if classifier else None
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("target", ["multiclass", "binary-strings", "multilabel"])
def test_classifier_converts_and_onnx_predicts_the_same(digits, target):
    X, y = digits
    if target == "binary-strings":
        y = np.where(y > 4, "high", "low")
    elif target == "multilabel":
        X, y = make_multilabel_classification(n_samples=200, random_state=0)
        X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32, 16), max_iter=30, random_state=0).fit(X, y)
        labels, proba = run(clf, X, classifier=True)
    np.testing.assert_array_equal(labels, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


def test_regressor_in_a_pipeline_converts_and_onnx_predicts_the_same(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=16, max_iter=30, random_state=0))
        pipe.fit(X, y.astype(np.float32))
    (predicted,) = run(pipe, X, classifier=False)
    np.testing.assert_allclose(predicted.ravel(), pipe.predict(X), rtol=1e-4, atol=1e-4)
