"""fastnn.metrics must agree with scikit-learn to the last digit that matters."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from fastnn.errors import FastnnError
from fastnn.metrics import classification_report, confusion_matrix


def _random_case(seed, c=6, n=300):
    """Random labels where class c-1 is never predicted and class c-2 never occurs."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, c, n)
    y_true[y_true == c - 2] = 0
    # Predictions agree with the truth about half the time so the figures are not trivial.
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, c, n))
    y_pred[y_pred == c - 1] = 1
    return y_true, y_pred, c


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_sklearn(seed):
    y_true, y_pred, c = _random_case(seed)
    assert c - 1 not in y_pred and c - 2 not in y_true
    labels = list(range(c))
    report = classification_report(y_true, y_pred, c)

    assert report["n"] == len(y_true)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, c), skm.confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert report["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()

    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    rows = report["per_class"]
    assert [row["class"] for row in rows] == labels
    assert [row["name"] for row in rows] == [str(k) for k in labels]
    np.testing.assert_allclose([row["precision"] for row in rows], p, atol=1e-12)
    np.testing.assert_allclose([row["recall"] for row in rows], r, atol=1e-12)
    np.testing.assert_allclose([row["f1"] for row in rows], f, atol=1e-12)
    assert [row["support"] for row in rows] == s.tolist()

    for average, suffix in (("macro", ""), ("weighted", "_weighted")):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert report["precision" + suffix] == pytest.approx(p, abs=1e-12)
        assert report["recall" + suffix] == pytest.approx(r, abs=1e-12)
        assert report["f1" + suffix] == pytest.approx(f, abs=1e-12)


def test_hand_computed_case():
    # true 0 0 1 1 2 ; pred 0 1 1 1 0  -> class 2 never predicted
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]

    report = classification_report(y_true, y_pred, 3, class_names=["zero", "one", "two"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    zero, one, two = report["per_class"]
    assert zero == {"class": 0, "name": "zero", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert one["precision"] == pytest.approx(2 / 3) and one["recall"] == 1.0
    assert one["f1"] == pytest.approx(0.8)
    assert two == {"class": 2, "name": "two", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["precision"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert report["f1_weighted"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 0) / 5)


def test_report_is_plain_json():
    y_true, y_pred, c = _random_case(0)
    report = classification_report(np.asarray(y_true, np.int32), np.asarray(y_pred, np.uint8), c)
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize(
    "y_true, y_pred, c, message",
    [
        ([0, 1, 2], [0, 1], 3, "length"),
        ([0, 1, 3], [0, 1, 2], 3, "0..2"),
        ([0, 1, 2], [0, -1, 2], 3, "0..2"),
        ([0.0, 1.0], [0, 1], 2, "integer"),
        ([[0, 1]], [[0, 1]], 2, "1-D"),
        ([], [], 2, "zero samples"),
        ([0, 1], [0, 1], 0, "n_classes"),
    ],
)
def test_bad_input(y_true, y_pred, c, message):
    with pytest.raises(FastnnError, match=message):
        confusion_matrix(y_true, y_pred, c)
    with pytest.raises(FastnnError, match=message):
        classification_report(y_true, y_pred, c)


def test_wrong_number_of_class_names():
    with pytest.raises(FastnnError, match="class names"):
        classification_report([0, 1], [0, 1], 2, class_names=["a"])
