"""Every plot writes one readable PNG, atomically, or fails cleanly."""

import numpy as np
import pytest
from PIL import Image

from fastnn import plots
from fastnn.errors import FastnnError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history(n_epochs, with_steps=True, with_dev=True):
    epochs = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_accuracy": 1 - 0.5 / e,
            "seconds": 0.1,
            **({"dev_accuracy": 1 - 0.6 / e} if with_dev else {}),
        }
        for e in range(1, n_epochs + 1)
    ]
    steps = (
        [{"step": s, "epoch": (s - 1) // 4 + 1, "train_loss": 2.0 / s} for s in range(1, 4 * n_epochs + 1)]
        if with_steps
        else []
    )
    return {"epochs": epochs, "steps": steps}


def _check_png(path, folder, size=None):
    """A PNG that pillow decodes, alone in its folder (no temporary files left), of ``size`` pixels."""
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        image.load()
        width, height = image.size
    if size is not None:
        assert (width, height) == size
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    return width, height


@pytest.mark.parametrize(
    "history", [_history(5), _history(1), _history(3, with_steps=False, with_dev=False), {"epochs": [], "steps": []}]
)
def test_plot_history(tmp_path, history):
    out = plots.plot_history(history, tmp_path / "history.png")
    assert out == tmp_path / "history.png"
    _check_png(out, tmp_path, size=(1000, 400))


def test_plot_history_rejects_garbage(tmp_path):
    with pytest.raises(FastnnError, match="history"):
        plots.plot_history({"epochs": [{"epoch": 1}]}, tmp_path / "h.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 30, (10, 10)) + np.diag(rng.integers(900, 1200, 10))
    out = plots.plot_confusion_matrix(cm, [str(k) for k in range(10)], tmp_path / "cm.png")
    _check_png(out, tmp_path, size=(820, 700))


def test_plot_confusion_matrix_bad_input(tmp_path):
    with pytest.raises(FastnnError, match="square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)), None, tmp_path / "cm.png")
    with pytest.raises(FastnnError, match="class names"):
        plots.plot_confusion_matrix(np.zeros((3, 3), int), ["a"], tmp_path / "cm.png")


def test_plot_prediction(tmp_path):
    image = np.zeros((28, 28), np.uint8)
    image[5:20, 10:14] = 255
    probs = np.full(10, 0.02)
    probs[1] = 0.82
    out = plots.plot_prediction(image, 1, 7, tmp_path / "with_probs.png", probs=probs)
    _check_png(out, tmp_path, size=(700, 340))
    out.unlink()
    out = plots.plot_prediction(image.reshape(784) / 255.0, 1, None, tmp_path / "image_only.png")
    _check_png(out, tmp_path, size=(340, 360))


def test_plot_misclassified(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((40, 784))
    y_true = rng.integers(0, 10, 40)
    y_pred = y_true.copy()
    y_pred[:4] = (y_true[:4] + 1) % 10  # 4 mistakes -> a 2x2 grid
    out = plots.plot_misclassified(X, y_true, y_pred, tmp_path / "wrong.png")
    width, height = _check_png(out, tmp_path)
    assert width > 0 and height > 0
    out.unlink()
    y_pred[:] = (y_true + 1) % 10  # 40 mistakes, 25 shown in a 5x5 grid
    out = plots.plot_misclassified(X, y_true, y_pred, tmp_path / "many.png", class_names=[f"d{k}" for k in range(10)])
    _check_png(out, tmp_path, size=(700, 850))


def test_plot_misclassified_with_no_mistakes(tmp_path):
    y = np.arange(5)
    out = plots.plot_misclassified(np.zeros((5, 28, 28), np.uint8), y, y, tmp_path / "none.png")
    _check_png(out, tmp_path, size=(400, 200))


def test_plot_misclassified_bad_input(tmp_path):
    with pytest.raises(FastnnError, match="one label per image"):
        plots.plot_misclassified(np.zeros((5, 784)), np.arange(4), np.arange(5), tmp_path / "x.png")
    with pytest.raises(FastnnError, match="max_images"):
        plots.plot_misclassified(np.zeros((5, 784)), np.arange(5), np.arange(5), tmp_path / "x.png", max_images=0)


def test_first_layer_images_are_each_units_weights_on_one_symmetric_scale():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((784, 100)).astype(np.float32)
    W[3, 70] = 50.0  # a weight beyond the units shown does not set their scale
    images, limit = plots.first_layer_images(W, max_units=64)
    assert images.shape == (64, 28, 28)
    np.testing.assert_array_equal(images[5], W[:, 5].reshape(28, 28))
    np.testing.assert_array_equal(images[63][1], W[28:56, 63])  # row-major, as the images are
    assert limit == pytest.approx(0.5 * np.abs(W[:, :64]).max())
    images, _ = plots.first_layer_images(W[:, :9])
    assert images.shape == (9, 28, 28)


@pytest.mark.parametrize("units, size", [(64, (940, 870)), (9, (440, 370)), (300, (940, 870))])
def test_plot_first_layer_draws_a_square_grid_of_units(tmp_path, units, size):
    W = np.random.default_rng(1).standard_normal((784, units)).astype(np.float32)
    out = plots.plot_first_layer(W, tmp_path / "first_layer.png")
    _check_png(out, tmp_path, size=size)
    with Image.open(out) as image:
        grey = np.asarray(image.convert("L"), float)
    assert grey.std() > 20  # weights drawn, not a blank page


def test_plot_first_layer_draws_all_zero_weights_without_a_warning(tmp_path, recwarn):
    plots.plot_first_layer(np.zeros((784, 4)), tmp_path / "zero.png")
    assert [str(w.message) for w in recwarn] == []


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.zeros((100, 8)), r"\(784, units\)"),
        (np.zeros((784, 0)), r"\(784, units\)"),
        (np.zeros(784), r"\(784, units\)"),
        (np.zeros((784, 3), int), "float"),
        (np.full((784, 3), np.nan), "NaN or infinite"),
    ],
)
def test_plot_first_layer_bad_input(tmp_path, weights, match):
    with pytest.raises(FastnnError, match=match):
        plots.plot_first_layer(weights, tmp_path / "w.png")
    with pytest.raises(FastnnError, match="max_units"):
        plots.plot_first_layer(np.zeros((784, 3)), tmp_path / "w.png", max_units=0)
    assert list(tmp_path.iterdir()) == []


def _all_plots(path):
    cm = np.eye(3, dtype=int)
    yield lambda: plots.plot_history(_history(2), path)
    yield lambda: plots.plot_confusion_matrix(cm, None, path)
    yield lambda: plots.plot_prediction(np.zeros(784), 0, 0, path, probs=[1.0, 0, 0])
    yield lambda: plots.plot_misclassified(np.zeros((2, 784)), [0, 1], [1, 0], path)
    yield lambda: plots.plot_first_layer(np.ones((784, 2)), path)


@pytest.mark.parametrize("where", ["missing_dir", "parent_is_file", "path_is_dir"])
def test_unwritable_destination_raises_and_leaves_nothing(tmp_path, where):
    if where == "missing_dir":
        path = tmp_path / "no" / "such" / "dir" / "plot.png"
    elif where == "parent_is_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "plot.png"
    else:
        path = tmp_path / "plot.png"
        path.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # Every plot shares the one writer, so the other failure modes need only one plot each.
    makers = list(_all_plots(path)) if where == "missing_dir" else [next(_all_plots(path))]
    for make_plot in makers:
        with pytest.raises(FastnnError, match="cannot write plot"):
            make_plot()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_written_files_get_the_usual_permissions_not_owner_only(tmp_path):
    import os
    import stat

    from fastnn._atomic import atomic_write_bytes

    target = tmp_path / "report.bin"
    atomic_write_bytes(target, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
