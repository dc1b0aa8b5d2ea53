"""``torch_record.py`` (a fastnn recipe in PyTorch, distortions per batch) and ``record_compare.py``:
the batched distortion against fastnn's definition, one short training run, the recipe resolved as
``fastnn train`` resolves it, and the comparison's arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn.augment
from fastnn.augment import AugmentSpec, distort

from torch_record import recipe

SCRIPT = Path(__file__).resolve().with_name("torch_record.py")
ELASTIC = AugmentSpec("elastic", rotation=10, scale=0.1, shear=0.2, shift=1.5, alpha=34, sigma=4)


def images(n=6, seed=0):
    """Digit-like test images: smooth blobs in [0, 1] away from the border, and a noisy bar."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.empty((n, 28, 28), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(9, 19, 2)
        out[i] = np.exp(-((yy - cy) ** 2 / 18 + (xx - cx) ** 2 / 8))
    out[:, 10:18, 12:14] += rng.random((n, 8, 2), dtype=np.float32)
    out[:, :2], out[:, -2:], out[:, :, :2], out[:, :, -2:] = 0.0, 0.0, 0.0, 0.0  # a blank border, as MNIST's
    return np.clip(out, 0, 1).reshape(n, 784)


def fastnn_with_draws(monkeypatch, X, spec, u01):
    """fastnn's numpy backend distorting ``X`` with the uniform draws ``u01`` (n, n_draws) in [0, 1)."""
    monkeypatch.setattr(fastnn.augment, "draws", lambda keys, n: u01[: len(keys), :n])
    out = distort(X, spec, backend="numpy")
    monkeypatch.undo()
    return out


def torch_with_draws(X, spec, u01, flip=None):
    import torch

    from torch_record import BatchDistortion

    d = BatchDistortion(spec)
    u = torch.from_numpy(2 * u01 - 1).float()
    U = u[:, 6:].reshape(len(X), 2, d.K, d.K) if d.K else None
    flips = None if flip is None else torch.from_numpy(flip)
    return d.warp(torch.from_numpy(X).view(-1, 1, 28, 28), d.theta(u, flips), U).reshape(len(X), 784).numpy()


def test_no_distortion_leaves_images_unchanged():
    pytest.importorskip("torch")
    import torch

    from torch_record import BatchDistortion

    X = torch.from_numpy(images())
    for spec in (AugmentSpec("affine"), AugmentSpec("elastic", alpha=0.0, sigma=4.0)):
        out = BatchDistortion(spec, generator=torch.Generator().manual_seed(0))(X)
        np.testing.assert_allclose(out.reshape(len(X), 784).numpy(), X.numpy(), atol=1e-5)


@pytest.mark.parametrize(("u4", "u5", "dx", "dy"), [(1.0, 0.5, 1, 0), (0.5, 0.0, 0, -1)])
def test_a_one_pixel_shift_moves_the_image_as_fastnn_does(monkeypatch, u4, u5, dx, dy):
    """Shift 1 px, draw 1 (x: +1) or 0 (y: -1), 0.5 (none): both move the image by (dx, dy) pixels."""
    pytest.importorskip("torch")
    X = images()
    spec = AugmentSpec("affine", shift=1.0)
    u01 = np.tile(np.array([0.5, 0.5, 0.5, 0.5, u4, u5]), (len(X), 1))
    ours = torch_with_draws(X, spec, u01)
    theirs = fastnn_with_draws(monkeypatch, X, spec, u01)
    moved = np.roll(X.reshape(-1, 28, 28), (dy, dx), axis=(1, 2)).reshape(len(X), 784)
    np.testing.assert_allclose(theirs, moved, atol=1e-6)  # the images have no ink at the border
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_the_batched_distortion_is_fastnns_given_the_same_draws(monkeypatch):
    """Rotation, shear, zoom per axis, shift and the elastic field: fastnn's definition, to float32."""
    pytest.importorskip("torch")
    X = images(8)
    u01 = np.random.default_rng(1).random((len(X), ELASTIC.n_draws()))
    ours = torch_with_draws(X, ELASTIC, u01)
    theirs = fastnn_with_draws(monkeypatch, X, ELASTIC, u01)
    assert np.abs(theirs - X).max() > 0.3  # a real distortion
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_the_grid_is_affine_grids():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from torch_record import BatchDistortion

    d = BatchDistortion(ELASTIC)
    u = torch.rand(5, d.n_draws) * 2 - 1
    theta = d.theta(u)
    ours = torch.matmul(theta, d.base).view(5, 2, 28, 28).permute(0, 2, 3, 1)
    np.testing.assert_allclose(ours, F.affine_grid(theta, [5, 1, 28, 28], align_corners=False), atol=1e-6)


def test_flips_and_erasing():
    torch = pytest.importorskip("torch")
    from torch_record import BatchDistortion

    X = images(64)
    mirrored = torch_with_draws(X, AugmentSpec("affine"), np.full((64, 6), 0.5), flip=np.ones(64, bool))
    np.testing.assert_allclose(mirrored, X.reshape(-1, 28, 28)[:, :, ::-1].reshape(64, 784), atol=1e-5)

    d = BatchDistortion(AugmentSpec("affine", erase=1.0), generator=torch.Generator().manual_seed(0))
    mask = d.erase_mask(torch.rand(2000, 6, generator=torch.Generator().manual_seed(1)))[:, 0].numpy()
    area = mask.sum(axis=(1, 2))
    rows, cols = mask.any(axis=2).sum(axis=1), mask.any(axis=1).sum(axis=1)
    assert (area == rows * cols).all()  # one rectangle each
    assert area.min() >= 0.015 * 784 and area.max() <= 0.27 * 784  # [0.02, 0.25] of the image, to rounding
    assert 0.08 < np.median(area) / 784 < 0.17
    d.erase = 0.3
    chosen = d.erase_mask(torch.rand(4000, 6, generator=torch.Generator().manual_seed(2))).flatten(1).any(1)
    assert 0.25 < float(chosen.float().mean()) < 0.35


def test_recipe_is_fastnn_trains():
    """The preset, then the options given, resolved exactly as ``fastnn train`` resolves them."""
    from fastnn.cli import build_parser
    from fastnn.cli.train import resolve_options

    for preset, given, argv in (
        ("max", {}, []),
        ("best", {"lr": 0.1, "epochs": 2, "dev_size": "500"}, ["--lr", "0.1", "--epochs", "2", "--dev-size", "500"]),
    ):
        args = build_parser().parse_args(["train", "--preset", preset, *argv])
        assert recipe(preset, given) == resolve_options(args)
    with pytest.raises(fastnn.errors.FastnnError, match="no preset 'nope'"):
        recipe("nope")


def test_torch_record_trains_one_epoch(tmp_path):
    pytest.importorskip("torch")
    try:
        from fastnn import load_dataset

        load_dataset("mnist", dev_size=0)
    except Exception as exc:  # no MNIST here, offline
        pytest.skip(f"MNIST not available: {exc}")
    out = tmp_path / "run.json"
    command = [sys.executable, str(SCRIPT), "--preset", "max", "--augment", "elastic", "--epochs", "1"]
    command += ["--limit", "300", "--threads", "1", "--hidden", "64,32", "--json", str(out), "--time-augment"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0]["rows"] == 300 and lines[0]["augment_seconds_per_epoch"] > 0
    run = json.loads(out.read_text())
    assert run["n_train"] == 300 and run["dev_size"] == 1000  # max's dev split
    assert run["config"]["augment"] == "elastic" and run["config"]["hidden"] == [64, 32]
    (epoch,) = run["epochs"]
    assert epoch["train_seconds"] > 0 and np.isfinite(epoch["train_loss"])
    assert 0.2 < epoch["test_accuracy"] <= 1 and 0.2 < epoch["dev_accuracy"] <= 1  # 300 images, one epoch
    assert "Linear(784, 64)-ReLU-Linear(64, 32)-ReLU-Linear(32, 10)" in run["notes"]


def test_compare_reports_time_to_target():
    import record_compare as rc

    def run(times, accs):
        rows = [
            {"epoch": i + 1, "seconds": t, "train_seconds": sum(times[: i + 1]), "test_accuracy": a}
            for i, (t, a) in enumerate(zip(times, accs))
        ]
        return {"epochs": rows, "train_seconds": sum(times), "test_target": rc.reached(rows, "test_accuracy", 0.9)}

    f, t = run([1, 1, 1], [0.8, 0.9, 0.95]), run([2, 2, 2], [0.8, 0.85, 0.91])
    assert f["test_target"] == (2, 2) and t["test_target"] == (3, 6)
    pairs = [{"fastnn": f, "torch": t}, {"fastnn": f, "torch": run([3, 3, 3], [0.5, 0.5, 0.5])}]
    summary = rc.summarise(pairs, 0.9)
    assert summary["ratio_to_target"] == {"median": 2 / 6, "min": 2 / 6, "max": 2 / 6, "n": 1}
    assert summary["ratio_total"]["median"] == pytest.approx((3 / 6 + 3 / 9) / 2)
