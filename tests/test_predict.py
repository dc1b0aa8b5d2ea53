"""Prediction on single images and batches, with a network whose answers are known."""

import numpy as np
import pytest

from fastnn import predict
from fastnn.errors import FastnnError
from fastnn.network import Network

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = np.array([7, 3, 5])


def _band_network(classes=CLASSES) -> Network:
    """Three hidden units summing the top, middle and bottom bands of rows; each drives one class."""
    W1 = np.zeros((784, 3), np.float32)
    rows = np.arange(784) // 28
    for unit, band in enumerate((rows < 9, (rows >= 9) & (rows < 19), rows >= 19)):
        W1[band, unit] = 1.0
    W2 = np.eye(3, dtype=np.float32)
    return Network([W1, W2], [np.zeros(3, np.float32), np.zeros(3, np.float32)], classes=classes)


def _deep_band_network(activation="tanh") -> Network:
    """The band network with two more hidden layers in between that pass the bands on, scaled."""
    band = _band_network()
    eye = np.eye(3, dtype=np.float32) / 50  # keeps tanh and logistic in their rising part
    coefs = [band.coefs[0], eye, 50 * eye, band.coefs[1]]
    return Network(coefs, [np.zeros(w.shape[1], np.float32) for w in coefs], activation, classes=CLASSES)


def _logistic_network(head="logistic", n_outputs=1, classes=("dark", "lit")) -> Network:
    """One hidden unit summing the image's pixels; one output, positive past 50 lit pixels."""
    W1 = np.ones((784, 1), np.float32)
    W2 = np.ones((1, n_outputs), np.float32)
    return Network(
        [W1, W2],
        [np.zeros(1, np.float32), np.full(n_outputs, -50.0, np.float32)],
        "relu",
        head,
        classes=None if classes is None else np.array(classes),
    )


def _image(band: int, value=255, dtype=np.uint8) -> np.ndarray:
    """A 28x28 image lit in one band of rows (0 top, 1 middle, 2 bottom)."""
    image = np.zeros((28, 28), dtype)
    image[[slice(0, 9), slice(9, 19), slice(19, 28)][band], 5:20] = value
    return image


@pytest.mark.parametrize("band", [0, 1, 2])
def test_known_network_predicts_the_lit_band(band):
    label, probs = predict.predict_image(_band_network(), _image(band))
    assert label == CLASSES[band] and type(label) is int
    assert probs.shape == (3,) and probs.argmax() == band
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity", "relu"])
def test_a_deeper_network_predicts_the_same_bands(activation):
    for band in (0, 1, 2):
        label, probs = predict.predict_image(_deep_band_network(activation), _image(band))
        assert label == CLASSES[band] and probs.shape == (3,)


def test_a_single_logistic_output_gives_two_classes_and_their_probabilities():
    net = _logistic_network()
    dark = np.zeros((28, 28), np.uint8)
    dark[0, :10] = 255  # 10 lit pixels: z = -40
    label, probs = predict.predict_image(net, dark)
    assert label == "dark" and probs.shape == (2,) and probs.sum() == pytest.approx(1.0)
    assert probs[0] > 0.99
    labels, probs = predict.predict_batch(net, np.stack([dark, _image(0)]))
    assert labels.tolist() == ["dark", "lit"] and probs.shape == (2, 2)
    np.testing.assert_allclose(probs[:, 1], net.predict_proba(np.stack([dark, _image(0)]).reshape(2, 784) / 255)[:, 0])


@pytest.mark.parametrize(
    "head, n_outputs, classes, says",
    [
        ("logistic", 3, ("a", "b", "c"), "a 0/1 label for each of its outputs"),
        ("identity", 2, None, "values, not classes"),
        ("exp", 1, None, "values, not classes"),
    ],
)
def test_networks_without_one_class_per_image_are_refused(head, n_outputs, classes, says):
    net = _logistic_network(head, n_outputs, classes)
    for call in (
        lambda: predict.predict_image(net, _image(0)),
        lambda: predict.predict_batch(net, np.stack([_image(0)])),
        lambda: predict.class_probabilities(net, np.zeros((1, 784), np.float32)),
    ):
        with pytest.raises(FastnnError, match=f"784-1-{n_outputs} relu/{head}\\) gives {says}"):
            call()


def test_raw_and_normalised_and_both_shapes_agree():
    net = _band_network()
    raw = _image(1, value=200)
    variants = [
        raw,
        raw.reshape(784),
        raw / 255.0,
        (raw / 255.0).reshape(784),
        raw.astype(np.float32),  # float but clearly raw (max > 1)
        raw.astype(np.int64),
    ]
    results = [predict.predict_image(net, v) for v in variants]
    for label, probs in results:
        assert label == results[0][0]
        np.testing.assert_array_equal(probs, results[0][1])
    np.testing.assert_array_equal(predict.prepare_image(raw), predict.prepare_image(raw / 255.0))


def test_prepare_image_rule():
    np.testing.assert_array_equal(predict.prepare_image(np.full(784, 255, np.uint8)), np.ones(784))
    np.testing.assert_array_equal(predict.prepare_image(np.full(784, 0.5)), np.full(784, 0.5))
    np.testing.assert_allclose(predict.prepare_image(np.full(784, 51.0)), np.full(784, 0.2))
    out = predict.prepare_image(np.zeros((28, 28)))
    assert out.dtype == np.float32 and out.shape == (784,)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros(100), "shape"),
        (np.zeros((1, 784)), "shape"),
        (np.full(784, -1.0), ">= 0"),
        (np.full(784, -1, np.int16), ">= 0"),
        (np.full(784, 256.0), "255"),
        (np.full(784, 300, np.int32), "255"),
        (np.full(784, np.nan), "NaN"),
        (np.full(784, np.inf), "NaN or infinite"),
        (np.full(784, "a"), "dtype"),
        (np.zeros(784, bool), "dtype"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(FastnnError, match=message):
        predict.prepare_image(image)
    with pytest.raises(FastnnError):
        predict.predict_image(_band_network(), image)


def test_batch_matches_single_images():
    net = _band_network()
    batch = np.stack([_image(b) for b in (2, 0, 1, 1)])
    labels, probs = predict.predict_batch(net, batch)
    assert labels.tolist() == [5, 7, 3, 3]
    labels_flat, probs_flat = predict.predict_batch(net, batch.reshape(4, 784) / 255.0)
    np.testing.assert_array_equal(labels, labels_flat)
    np.testing.assert_array_equal(probs, probs_flat)
    for image, label, row in zip(batch, labels, probs):
        single_label, single_probs = predict.predict_image(net, image)
        assert single_label == label
        np.testing.assert_allclose(single_probs, row, rtol=1e-6)


def test_string_classes_come_back_as_str():
    label, _ = predict.predict_image(_band_network(np.array(["a", "b", "c"])), _image(2))
    assert label == "c" and type(label) is str


@pytest.mark.parametrize(
    "images", [np.zeros((784,)), np.zeros((2, 28, 27)), np.zeros((0, 784)), np.full((2, 784), -3.0)]
)
def test_bad_batches(images):
    with pytest.raises(FastnnError):
        predict.prepare_images(images)


def test_show_sample_returns_the_prediction_and_draws_it(tmp_path, capsys):
    from fastnn.plots import show_sample

    net = _band_network()
    X = np.stack([_image(b) for b in (0, 1, 2)]).reshape(3, 784) / 255.0
    y = CLASSES[[0, 1, 0]]  # the last sample is deliberately mislabelled
    path = tmp_path / "pred.png"
    result = show_sample(net, X, 2, y, path=path)
    assert capsys.readouterr().out == ""  # drawing prints nothing; fastnn.test_prediction prints
    assert result["index"] == 2 and result["prediction"] == 5 and result["label"] == 7
    assert len(result["probs"]) == 3 and all(type(p) is float for p in result["probs"])
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["pred.png"]


def test_show_sample_without_labels_or_path_draws_nothing(tmp_path, monkeypatch):
    from fastnn.plots import show_sample

    monkeypatch.chdir(tmp_path)
    X = np.stack([_image(1)]).reshape(1, 784)
    result = show_sample(_band_network(), X, 0)
    assert result["label"] is None and result["prediction"] == 3
    assert list(tmp_path.iterdir()) == []


def test_show_sample_show_uses_pyplot(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastnn.plots import show_sample

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    show_sample(_band_network(), _image(0).reshape(1, 784), 0, show=True)
    assert len(shown) == 1
    plt.close("all")


@pytest.mark.parametrize("index", [3, -1, 1.0, True])
def test_show_sample_bad_index(index):
    from fastnn.plots import show_sample

    with pytest.raises(FastnnError, match="index"):
        show_sample(_band_network(), np.zeros((3, 784)), index)


def test_show_sample_mismatched_labels():
    from fastnn.plots import show_sample

    with pytest.raises(FastnnError, match="labels"):
        show_sample(_band_network(), np.zeros((3, 784)), 0, y=[1, 2])
