"""Tests for ``fastnn predict`` (also ``scripts/predict.py``) and fastnn.images (a user's own image, made MNIST-style).

The model is trained here, in a second, on drawn shapes that survive MNIST's
crop-scale-centre step (a ring is "0", a vertical bar "1", a hook "7"), so an
image file drawn anywhere on any canvas must come back with its shape's label.
Most runs call the script's ``main`` in-process; two go through a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from fastnn.cli import main as fastnn_main
from fastnn.config import TrainConfig
from fastnn.data import PIXEL_COLUMNS
from fastnn.images import mnist_style, read_image
from fastnn.modelfile import save_network
from fastnn.network import Network, init_network
from fastnn.predict import predict_batch, predict_image
from fastnn.training import train

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "predict.py"

LABELS = {"ring": 0, "bar": 1, "hook": 7}


def draw(kind: str, size=(160, 120), box=(40, 15, 100, 105), width=9, ink=0, paper=255) -> Image.Image:
    """A shape drawn as a grayscale ('L') image: ink on paper, inside ``box`` (x0, y0, x1, y1)."""
    img = Image.new("L", size, paper)
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    if kind == "ring":
        d.ellipse(box, outline=ink, width=width)
    elif kind == "bar":
        d.line([((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1)], fill=ink, width=width)
    else:  # hook: the top stroke and the diagonal of a 7
        d.line([(x0, y0), (x1, y0), (x0 + (x1 - x0) // 4, y1)], fill=ink, width=width)
    return img


def random_drawing(kind: str, rng) -> Image.Image:
    w, h = rng.integers(60, 200, 2)
    if kind == "ring":
        bw, bh = rng.integers(20, 50, 2)
    else:  # bars and hooks are taller than wide
        bw, bh = rng.integers(20, 40), rng.integers(40, 80)
    bw, bh = min(bw, w - 10), min(bh, h - 10)
    x0, y0 = rng.integers(2, w - bw - 2), rng.integers(2, h - bh - 2)
    return draw(
        kind,
        (int(w), int(h)),
        (int(x0), int(y0), int(x0 + bw), int(y0 + bh)),
        width=int(rng.integers(3, 10)),
        ink=int(rng.integers(0, 80)),
        paper=int(rng.integers(170, 256)),
    )


def fit(X, y, classes, config: TrainConfig) -> Network:
    """A network trained on ``X`` and labels ``y`` drawn from ``classes``, labelled with them."""
    classes = np.asarray(classes)
    index = {label: k for k, label in enumerate(classes.tolist())}
    net, _ = train(X, np.array([index[label] for label in np.asarray(y).tolist()]), config, n_classes=len(classes))
    return Network.from_params(net.params, net.activation, classes=classes)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """``(path, network)``: a 784-32-16-3 tanh model with labels 0, 1, 7, trained on MNIST-style drawings."""
    rng = np.random.default_rng(0)
    kinds = list(LABELS) * 40
    X = np.stack([mnist_style(np.asarray(random_drawing(k, rng))).ravel() for k in kinds])
    y = np.array([LABELS[k] for k in kinds])
    net = fit(
        X,
        y,
        [0, 1, 7],
        TrainConfig(hidden=(32, 16), activation="tanh", epochs=30, batch_size=16, lr=0.2, backend="numpy"),
    )
    assert (np.asarray(net.classes)[net.predict(X, "numpy")] == y).all()
    path = save_network(net, tmp_path_factory.mktemp("model") / "model.npz")
    return path, net


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """An empty current folder, so that a default ``submission.csv`` lands somewhere we can see."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = fastnn_main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


# --- fastnn.images ------------------------------------------------------------------


def test_read_image_makes_an_mnist_style_digit(tmp_path):
    draw("ring", size=(300, 200), box=(20, 30, 120, 190), width=12).save(tmp_path / "ring.png")
    img = read_image(tmp_path / "ring.png")
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert img.min() == 0.0 and img.max() <= 1.0 and img.max() > 0.9
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side, scaled to 20 px
    assert 10 <= cols[-1] - cols[0] + 1 <= 15  # aspect ratio kept (100 x 160 ink)
    mass = img.sum()
    r = (img.sum(axis=1) * np.arange(28)).sum() / mass
    c = (img.sum(axis=0) * np.arange(28)).sum() / mass
    assert abs(r - 14) <= 0.5 and abs(c - 14) <= 0.5  # centred by centre of mass, as MNIST


def test_dark_on_light_and_light_on_dark_read_the_same(tmp_path):
    draw("hook", ink=0, paper=255).save(tmp_path / "dark.png")
    draw("hook", ink=255, paper=0).save(tmp_path / "light.png")
    np.testing.assert_allclose(read_image(tmp_path / "dark.png"), read_image(tmp_path / "light.png"), atol=1e-6)


def test_position_and_canvas_size_do_not_matter():
    a = mnist_style(np.asarray(draw("ring", size=(160, 120), box=(10, 10, 70, 100))))
    b = mnist_style(np.asarray(draw("ring", size=(400, 300), box=(300, 190, 360, 280))))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_transparent_canvas_export_reads_like_an_opaque_drawing(tmp_path):
    opaque = draw("bar")
    alpha = 255 - np.asarray(opaque)  # black ink where drawn, fully transparent elsewhere
    rgba = np.zeros(opaque.size[::-1] + (4,), np.uint8)
    rgba[..., 3] = alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "canvas.png")
    opaque.save(tmp_path / "opaque.png")
    np.testing.assert_allclose(read_image(tmp_path / "canvas.png"), read_image(tmp_path / "opaque.png"), atol=1e-6)


def test_16_bit_png_reads_like_8_bit(tmp_path):
    img8 = np.asarray(draw("ring"))
    Image.fromarray(img8.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    Image.fromarray(img8).save(tmp_path / "plain.png")
    np.testing.assert_allclose(read_image(tmp_path / "deep.png"), read_image(tmp_path / "plain.png"), atol=1e-5)


# --- the script: successes ----------------------------------------------------------


@pytest.mark.parametrize("kind, fmt", [("bar", "png"), ("ring", "jpg"), ("hook", "png")])
def test_image_file_prints_its_label_and_top_probabilities(model, workdir, capsys, kind, fmt):
    path, _ = model
    rng = np.random.default_rng(1)
    # A "photo": grey, noisy paper, off-centre ink, compressed.
    gray = np.asarray(draw(kind, size=(240, 180), box=(130, 40, 190, 160), width=11, ink=40, paper=200), float)
    noisy = np.clip(gray + rng.normal(0, 8, gray.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).convert("RGB").save(workdir / f"digit.{fmt}")
    rc, out, err = run(capsys, path, workdir / f"digit.{fmt}")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"label: {LABELS[kind]}"
    assert lines[1] == "top probabilities:" and len(lines) == 5
    shown = [(int(line.split(":")[0]), float(line.split(":")[1])) for line in lines[2:]]
    assert shown[0][0] == LABELS[kind] and shown[0][1] > 0.5
    assert [p for _, p in shown] == sorted((p for _, p in shown), reverse=True)
    assert sorted(k for k, _ in shown) == [0, 1, 7]
    assert os.listdir(workdir) == [f"digit.{fmt}"]  # a single image writes nothing without --out


@pytest.mark.parametrize("shape", [(28, 28), (784,)])
def test_npy_image_is_predicted_like_predict_image(model, workdir, capsys, shape):
    path, net = model
    image = (read_image(_save(draw("hook"), workdir / "h.png")) * 255).astype(np.uint8).reshape(shape)
    np.save(workdir / "one.npy", image)
    rc, out, _ = run(capsys, path, workdir / "one.npy", "--top", "1")
    label, probs = predict_image(net, image)
    assert rc == 0 and out.splitlines() == ["label: 7", "top probabilities:", f"  7: {probs.max():.4f}"]
    assert label == 7


def test_npy_batch_writes_a_submission(model, workdir, capsys):
    path, net = model
    kinds = ["ring", "bar", "hook", "bar"]
    batch = np.stack([read_image(_save(draw(k), workdir / f"{i}.png")) for i, k in enumerate(kinds)])
    np.save(workdir / "batch.npy", batch)
    rc, out, _ = run(capsys, path, workdir / "batch.npy", "--out", workdir / "sub.csv")
    assert rc == 0 and out == f"predicted 4 images; wrote {workdir / 'sub.csv'}\n"
    sub = pd.read_csv(workdir / "sub.csv")
    assert list(sub.columns) == ["ImageId", "Label"] and list(sub.ImageId) == [1, 2, 3, 4]
    assert list(sub.Label) == [0, 1, 7, 1] == predict_batch(net, batch)[0].tolist()


def _save(img: Image.Image, path: Path) -> Path:
    img.save(path)
    return path


def _kaggle_csv(path: Path, X: np.ndarray, y=None) -> Path:
    frame = pd.DataFrame(X, columns=PIXEL_COLUMNS)
    if y is not None:
        frame.insert(0, "label", y)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def pixels(workdir):
    """Six MNIST-style drawings as uint8 rows (784 pixels each) and their labels."""
    kinds = ["hook", "ring", "bar", "ring", "hook", "bar"]
    X = np.stack(
        [(read_image(_save(draw(k), workdir / "tmp.png")) * 255).round().astype(np.uint8).ravel() for k in kinds]
    )
    os.remove(workdir / "tmp.png")
    return X, np.array([LABELS[k] for k in kinds])


def test_kaggle_test_csv_writes_submission_csv_by_default(model, workdir, capsys, pixels):
    path, net = model
    X, y = pixels
    _kaggle_csv(workdir / "test.csv", X)
    rc, out, err = run(capsys, path, workdir / "test.csv")
    assert (rc, err, out) == (0, "", "predicted 6 images; wrote submission.csv\n")
    assert sorted(os.listdir(workdir)) == ["submission.csv", "test.csv"]  # no temporary file left
    text = (workdir / "submission.csv").read_text()
    expected = "ImageId,Label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(y, start=1))
    assert text == expected
    assert predict_batch(net, X)[0].tolist() == y.tolist()


def test_kaggle_train_csv_also_reports_accuracy(model, workdir, capsys, pixels):
    path, _ = model
    X, y = pixels
    wrong = y.copy()
    wrong[0] = 1  # one label in the file disagrees with the drawing
    _kaggle_csv(workdir / "train.csv", X, wrong)
    rc, out, _ = run(capsys, path, workdir / "train.csv", "--out", "preds.csv")
    assert rc == 0 and out.splitlines()[-1] == "accuracy on the file's labels: 0.8333"


def test_model_on_other_features_takes_raw_npy_rows(workdir, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 5, (60, 5))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    net = fit(X, y, ["neg", "pos"], TrainConfig(hidden=(8,), epochs=20, batch_size=16, lr=0.01, backend="numpy"))
    save_network(net, workdir / "m.npz")
    np.save(workdir / "rows.npy", X[:7])
    rc, _, _ = run(capsys, workdir / "m.npz", workdir / "rows.npy", "--out", "p.csv")
    assert rc == 0
    expected = np.asarray(net.classes)[net.predict(X[:7].astype(np.float32), "numpy")]
    assert pd.read_csv(workdir / "p.csv").Label.tolist() == expected.tolist()
    assert set(expected) == {"neg", "pos"}  # not vacuous: both labels occur
    _save(draw("ring"), workdir / "r.png")
    rc, out, err = run(capsys, workdir / "m.npz", workdir / "r.png")
    assert (rc, out) == (2, "")
    assert err == "error: the model expects 5 features, but r.png holds 28x28 images (784 pixels)\n"


def test_a_single_logistic_output_model_prints_both_classes(workdir, capsys):
    """One logistic output: P(second class) = p; the first class gets 1 - p."""
    net = init_network(784, (4,), 1, seed=0, head="logistic", classes=np.array(["blank", "ink"]))
    net.coefs[0][...] = 0.01
    net.coefs[1][...] = 1.0
    net.intercepts[1][...] = -0.5  # z = 0.04 * ink - 0.5: positive past ~12.5 of ink
    save_network(net, workdir / "m.npz")
    image = np.zeros((28, 28), np.uint8)
    image[10:18, 10:14] = 255  # 32 lit pixels
    np.save(workdir / "one.npy", image)
    rc, out, _ = run(capsys, workdir / "m.npz", workdir / "one.npy")
    p = float(net.predict_proba(image.reshape(1, 784) / 255.0)[0, 0])
    assert rc == 0 and p > 0.5
    assert out.splitlines() == ["label: ink", "top probabilities:", f"  ink: {p:.4f}", f"  blank: {1 - p:.4f}"]


# --- the script: errors -----------------------------------------------------------------


def _not_an_image(d):
    (d / "digit.png").write_text("this is text, not a PNG\n")
    return ["MODEL", d / "digit.png"], "is not an image file"


def _wrong_shape(d):
    np.save(d / "x.npy", np.zeros((3, 5)))
    return ["MODEL", d / "x.npy"], r"shape \(3, 5\)"


def _pickled(d):
    np.save(d / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return ["MODEL", d / "x.npy"], "Python objects"


def _unreadable_model(d):
    (d / "model.npz").write_bytes(b"PK\x03\x04 truncated")
    _save(draw("bar"), d / "b.png")
    return [d / "model.npz", d / "b.png"], "not a readable fastnn model file"


def _missing_model(d):
    _save(draw("bar"), d / "b.png")
    return [d / "nothing.npz", d / "b.png"], "model file not found"


def _missing_input(d):
    return ["MODEL", d / "nothing.png"], "image file not found"


def _blank(d):
    Image.new("L", (50, 50), 255).save(d / "blank.png")
    return ["MODEL", d / "blank.png"], "no digit found"


def _regression_model(d):
    save_network(init_network(784, (8, 4), 2, seed=0, head="identity"), d / "reg.npz")
    _save(draw("bar"), d / "b.png")
    return [d / "reg.npz", d / "b.png"], r"784-8-4-2 relu/identity\) gives values, not classes"


def _bad_csv(d):
    (d / "test.csv").write_text("a,b\n1,2\n")
    return ["MODEL", d / "test.csv", "--out", d / "sub.csv"], "header"


def _unwritable_out(d):
    np.save(d / "batch.npy", np.zeros((2, 784), np.uint8))
    return ["MODEL", d / "batch.npy", "--out", d / "no" / "such" / "sub.csv"], "cannot write"


@pytest.mark.parametrize(
    "case",
    [
        _not_an_image,
        _wrong_shape,
        _pickled,
        _unreadable_model,
        _missing_model,
        _regression_model,
        _missing_input,
        _blank,
        _bad_csv,
        _unwritable_out,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_errors_are_one_line_exit_2_and_write_nothing(model, workdir, capsys, case):
    argv, match = case(workdir)
    argv = [model[0] if a == "MODEL" else a for a in argv]
    before = sorted(os.listdir(workdir))
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert re.search(match, err)
    assert sorted(os.listdir(workdir)) == before


# --- as a program -------------------------------------------------------------------------


def test_script_runs_as_a_program(model, tmp_path):
    _save(draw("bar", size=(90, 200), box=(20, 20, 60, 180)), tmp_path / "one.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    env = {**os.environ, "PYTHONPATH": ""}
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), str(model[0]), str(tmp_path / "one.png")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("label: 1\n") and ok.stderr == ""
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), str(model[0]), str(tmp_path / "junk.jpg")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
