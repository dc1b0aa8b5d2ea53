"""On-the-fly augmentation (:mod:`fastnn.augment`): the two backends' kernels against each
other and against a per-pixel transcription of the definition, the keyed randomness, and
the hook in the training loop."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from fastnn import augment as aug
from fastnn import checkpoint
from fastnn._keys import GOLDEN, splitmix64
from fastnn.augment import AugmentSpec, agreement_atol
from fastnn.backends import get_backend
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.modelfile import load_network
from fastnn.network import init_network
from fastnn.report import RunResult, evaluate, write_report
from fastnn.training import train

SPECS = {
    "affine": AugmentSpec("affine", rotation=15, scale=0.15, shear=0.3, shift=2.5),
    "elastic": AugmentSpec("elastic", rotation=10, scale=0.1, shear=0.2, shift=1.5, alpha=34, sigma=4),
    "elastic-only": AugmentSpec("elastic", alpha=40, sigma=6),
    "elastic-fine": AugmentSpec("elastic", rotation=5, alpha=8, sigma=1.5),
    "elastic-strong": AugmentSpec("elastic", rotation=30, scale=0.3, shear=1, shift=5, alpha=200, sigma=1),
}


#: Flips and random erasing (for clothing), alone and with the affine and elastic distortions.
FASHION_SPECS = {
    "flip-0.1": AugmentSpec("affine", rotation=10, scale=0.1, shear=0.2, shift=1.5, flip=0.1),
    "flip-erase-0.5": AugmentSpec("affine", rotation=10, scale=0.1, shear=0.2, shift=1.5, flip=0.5, erase=0.5),
    "shift-flip-erase-0.9": AugmentSpec("affine", shift=2, flip=0.9, erase=0.9, erase_area=0.4),
    "flip-erase-1": AugmentSpec("affine", rotation=15, scale=0.15, shear=0.3, shift=2.5, flip=1, erase=1),
    "elastic-flip-erase-0.5": AugmentSpec(
        "elastic", rotation=10, scale=0.1, shear=0.2, shift=1.5, alpha=34, sigma=4, flip=0.5, erase=0.5
    ),
    "elastic-strong-flip-erase-0.3": AugmentSpec(
        "elastic", rotation=30, scale=0.3, shear=1, shift=5, alpha=200, sigma=1, flip=0.3, erase=0.3, erase_area=1
    ),
}


def digits(n: int, seed: int = 0) -> np.ndarray:
    """Digit-like 28x28 images in [0, 1]: a few thick random strokes, zero background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    X = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        for _ in range(3):
            (x0, y0), (x1, y1) = rng.uniform(5, 22, (2, 2))
            t = np.clip(
                ((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / max((x1 - x0) ** 2 + (y1 - y0) ** 2, 1e-6), 0, 1
            )
            dist = np.hypot(xx - x0 - t * (x1 - x0), yy - y0 - t * (y1 - y0))
            X[i] = np.maximum(X[i], np.clip(2.0 - dist, 0, 1))
    return X.reshape(n, 784)


@pytest.fixture(scope="module")
def images():
    return digits(300)


def run(backend_name, X, seed, epoch, spec):
    out = np.full(X.shape, np.nan, np.float32)
    get_backend(backend_name).augment(X, seed, epoch, spec, out)
    return out


def naive_augment(x, key, spec):
    """One image by the letter of the definition in fastnn.augment: Python floats, per pixel."""

    def draw(j):
        z = splitmix64((key + (j + 1) * GOLDEN) % 2**64)
        return (z >> 11) * 2.0**-53

    def u(j):
        return 2 * draw(j) - 1

    c = 13.5
    theta = math.radians(spec.rotation * u(0))
    k, zx, zy = spec.shear * u(1), 1 + spec.scale * u(2), 1 + spec.scale * u(3)
    tx, ty = spec.shift * u(4), spec.shift * u(5)
    s = spec.sigma
    K = math.ceil((27 + 6 * s) / s) + 1
    grid = [c + (i - (K - 1) / 2) * s for i in range(K)]

    def g(t):
        return 0.0 if abs(t) > 3 * s else math.exp(-t * t / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)

    f = 6 + (2 * K * K if spec.elastic else 0)  # the flip draw, then the erasing's five
    flipped = draw(f) < spec.flip
    img = x.reshape(28, 28).astype(np.float64)
    out = np.zeros((28, 28))
    for r in range(28):
        for q in range(28):
            fq = 27 - q if flipped else q  # F(p)
            px, py = (fq - c) / zx, (r - c) / zy
            px += k * py
            sx = c + math.cos(theta) * px - math.sin(theta) * py - tx
            sy = c + math.sin(theta) * px + math.cos(theta) * py - ty
            if spec.elastic:
                for comp in range(2):
                    base = 6 + comp * K * K
                    d = (
                        spec.alpha
                        * s
                        * sum(
                            g(r - grid[i]) * g(q - grid[j]) * u(base + i * K + j)
                            for i in range(K)
                            for j in range(K)
                            if abs(r - grid[i]) <= 3 * s and abs(q - grid[j]) <= 3 * s
                        )
                    )
                    if comp == 0:
                        sx += d
                    else:
                        sy += d
            x0, y0 = math.floor(sx), math.floor(sy)
            v = 0.0
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < 28 and 0 <= xx < 28:
                        v += wy * wx * img[yy, xx]
            out[r, q] = v
    if draw(f + 1) < spec.erase:
        S = 784 * (0.02 + (spec.erase_area - 0.02) * draw(f + 2))
        ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * draw(f + 3))
        h = min(max(math.floor(math.sqrt(S * ratio) + 0.5), 1), 28)
        w = min(max(math.floor(S / h + 0.5), 1), 28)
        y0, x0 = math.floor(draw(f + 4) * (28 - h + 1)), math.floor(draw(f + 5) * (28 - w + 1))
        out[y0 : y0 + h, x0 : x0 + w] = 0.0
    return out.reshape(784)


@pytest.mark.parametrize("name", ["affine", "elastic", "flip-erase-0.5", "elastic-flip-erase-0.5"])
def test_the_reference_computes_the_documented_definition(images, name):
    spec = {**SPECS, **FASHION_SPECS}[name]
    n = 8 if spec.flip or spec.erase else 2  # enough samples to flip some and erase some
    ref = run("numpy", images[:n], 7, 3, spec)
    keys = aug.sample_keys(7, 3, n)
    if spec.flip:  # some of the samples flipped and some not, some erased and some not
        flipped, erased = flips_of(spec, 7, 3, n), aug.erase_boxes(aug.erase_draws(keys, spec), spec)[:, 2] > 0
        assert 0 < flipped.sum() < n and 0 < erased.sum() < n
    for i in range(n):
        np.testing.assert_allclose(ref[i], naive_augment(images[i], int(keys[i]), spec), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(SPECS))
def test_backends_agree_on_the_distorted_images(images, name, numba_threads, thread_counts):
    ref = run("numpy", images, 3, 11, SPECS[name])
    assert np.isfinite(ref).all() and ref.min() >= 0 and ref.max() <= 1
    assert np.abs(ref - images).max() > 0.5  # the images did change
    outs = []
    for threads in thread_counts:
        with numba_threads(threads):
            outs.append(run("numba", images, 3, 11, SPECS[name]))
    np.testing.assert_allclose(outs[0], ref, rtol=0, atol=agreement_atol(SPECS[name]))
    for other in outs[1:]:  # the thread count changes nothing at all
        np.testing.assert_array_equal(other, outs[0])


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_zero_ranges_give_the_images_back_exactly(images, backend_name):
    for spec in (AugmentSpec("affine"), AugmentSpec("elastic", alpha=0.0, sigma=3)):
        np.testing.assert_array_equal(run(backend_name, images, 0, 0, spec), images)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_whole_pixel_shift_moves_the_image(backend_name):
    """A single bright pixel, shifted only: its bilinear splat keeps its mass and its centre
    of mass lands exactly at the drawn shift."""
    X = np.zeros((50, 784), np.float32)
    X[:, 14 * 28 + 14] = 1.0
    spec = AugmentSpec("affine", shift=3.0)
    out = run(backend_name, X, 5, 0, spec)
    u = 2 * aug.draws(aug.sample_keys(5, 0, 50), 6) - 1
    for i in range(50):
        tx, ty = 3.0 * u[i, 4], 3.0 * u[i, 5]
        img = out[i].reshape(28, 28)
        cy, cx = (img * np.arange(28)[:, None]).sum(), (img * np.arange(28)[None, :]).sum()
        assert img.sum() == pytest.approx(1.0, abs=1e-6)  # bilinear splats conserve the mass inside
        assert (cx, cy) == pytest.approx((14 + tx, 14 + ty), abs=1e-5)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_draws_are_keyed_on_seed_epoch_and_row_index(images, backend_name):
    spec = SPECS["elastic"]
    full = run(backend_name, images, 1, 2, spec)
    np.testing.assert_array_equal(run(backend_name, images, 1, 2, spec), full)  # deterministic
    np.testing.assert_array_equal(run(backend_name, images[:37], 1, 2, spec), full[:37])  # row-keyed
    for seed, epoch in ((1, 3), (2, 2)):
        other = run(backend_name, images, seed, epoch, spec)
        assert np.abs(other - full).max(axis=1).min() > 0.05  # every image distorted differently


def test_the_elastic_field_has_simards_displacement_scale():
    """alpha * sigma * A U A^T with U ~ U(-1, 1) on the grid has the rms of Simard's per-pixel
    noise smoothed by a normalised Gaussian: alpha / (sigma sqrt(12 pi)) (interior pixels)."""
    rng = np.random.default_rng(0)
    for alpha, sigma in ((34.0, 4.0), (36.0, 6.0), (10.0, 2.0)):
        A, lo, hi = aug.elastic_grid(sigma)
        assert ((A != 0).argmax(axis=1) == lo).all() and hi.max() <= A.shape[1]
        U = rng.uniform(-1, 1, (4000, A.shape[1], A.shape[1]))
        D = alpha * sigma * (A @ U @ A.T)
        assert D[:, 4:24, 4:24].std() == pytest.approx(alpha / (sigma * math.sqrt(12 * math.pi)), rel=0.03)


def test_the_draws_are_uniform():
    u = aug.draws(aug.sample_keys(0, 0, 20000), 8)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.02


def test_the_kernels_refuse_other_shapes():
    X = np.zeros((4, 100), np.float32)
    with pytest.raises(ValueError):
        get_backend("numba").augment(X, 0, 0, SPECS["affine"], np.empty_like(X))
    X = np.zeros((4, 784), np.float32)
    with pytest.raises(ValueError):
        get_backend("numba").augment(X, 0, 0, SPECS["affine"], X)


# --- flips and random erasing (for clothing) ------------------------------------------


def flips_of(spec, seed, epoch, n):
    """Which of the first ``n`` samples the definition flips: ``u_f < flip``."""
    return aug.draws(aug.sample_keys(seed, epoch, n), spec.flip_draw() + 1)[:, spec.flip_draw()] < spec.flip


def boxes_of(spec, seed, epoch, n):
    """The erased rectangles ``[y0, x0, h, w]`` of the first ``n`` samples (``h = w = 0``: none)."""
    return aug.erase_boxes(aug.erase_draws(aug.sample_keys(seed, epoch, n), spec), spec)


def box_mask(box) -> np.ndarray:
    y0, x0, h, w = box
    mask = np.zeros((28, 28), bool)
    mask[y0 : y0 + h, x0 : x0 + w] = True
    return mask.reshape(784)


@pytest.mark.parametrize("name", list(FASHION_SPECS))
def test_backends_agree_with_flips_and_erasing(images, name, numba_threads, thread_counts):
    spec = FASHION_SPECS[name]
    ref = run("numpy", images, 3, 11, spec)
    assert np.isfinite(ref).all() and ref.min() >= 0 and ref.max() <= 1
    outs = []
    for threads in thread_counts:
        with numba_threads(threads):
            outs.append(run("numba", images, 3, 11, spec))
    np.testing.assert_allclose(outs[0], ref, rtol=0, atol=agreement_atol(spec))
    for other in outs[1:]:  # the thread count changes nothing at all
        np.testing.assert_array_equal(other, outs[0])
    assert flips_of(spec, 3, 11, len(images)).any()
    boxes = boxes_of(spec, 3, 11, len(images))
    assert (boxes[:, 2] > 0).any() == (spec.erase > 0)
    for i in np.flatnonzero(boxes[:, 2]):  # the same pixels erased, exactly
        assert not ref[i][box_mask(boxes[i])].any() and not outs[0][i][box_mask(boxes[i])].any()


def test_how_the_kernel_splits_the_samples_changes_no_image_and_no_count(images, monkeypatch):
    """1, 3 or 7 chunks of samples (as many threads would take them): identical images, and
    the nonzero counts the sparse path rebuilds its rows from stay right after erasing."""
    import numba

    from fastnn.backends._numba_sparse import compress_rows

    nb = get_backend("numba")
    monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", 1.0)
    spec = FASHION_SPECS["elastic-flip-erase-0.5"]
    net = init_network(784, 8, 10, 0)
    first = None
    for chunks in (1, 3, 7):
        monkeypatch.setattr(numba, "get_num_threads", lambda chunks=chunks: chunks)
        out, ws = np.empty_like(images), nb.make_workspace(net, 32)
        nb.augment(images, 2, 5, spec, out, ws)
        assert ws.sparse
        for a, b in zip(ws.rows, compress_rows(out)):
            np.testing.assert_array_equal(a, b)
        if first is None:
            first = out
        np.testing.assert_array_equal(out, first)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_flip_with_zero_affine_ranges_is_exactly_the_mirrored_image(images, backend_name):
    mirrored = images.reshape(-1, 28, 28)[:, :, ::-1].reshape(-1, 784)
    np.testing.assert_array_equal(run(backend_name, images, 0, 0, AugmentSpec("affine", flip=1.0)), mirrored)
    spec = AugmentSpec("affine", flip=0.5)
    out, flipped = run(backend_name, images, 4, 1, spec), flips_of(spec, 4, 1, len(images))
    assert 0.35 < flipped.mean() < 0.65
    np.testing.assert_array_equal(out[flipped], mirrored[flipped])
    np.testing.assert_array_equal(out[~flipped], images[~flipped])


def test_the_flip_probability_is_the_fraction_flipped_and_one_flips_every_image():
    for p in (0.0, 0.1, 0.5, 0.9, 1.0):
        fraction = flips_of(AugmentSpec("affine", flip=p), 0, 3, 20000).mean()
        assert fraction == pytest.approx(p, abs=0.015)
        assert (fraction == 1.0) == (p == 1.0) and (fraction == 0.0) == (p == 0.0)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("erase_area", [0.25, 0.6])
def test_an_erased_image_is_the_unerased_distortion_with_a_zero_rectangle(images, backend_name, erase_area):
    erased_spec = AugmentSpec("elastic", rotation=10, shift=1.5, alpha=34, sigma=4, erase=1.0, erase_area=erase_area)
    erased = run(backend_name, images, 6, 2, erased_spec)
    plain = run(backend_name, images, 6, 2, replace(erased_spec, erase=0.0))
    boxes = boxes_of(erased_spec, 6, 2, len(images))
    y0, x0, h, w = boxes.T
    assert (h >= 1).all() and (w >= 1).all() and (y0 >= 0).all() and (x0 >= 0).all()
    assert (y0 + h <= 28).all() and (x0 + w <= 28).all()
    # the stated area: S in [0.02, erase_area] of the image, h x w within h / 2 of it
    assert (h * w >= 0.02 * 784 - h / 2).all() and (h * w <= erase_area * 784 + h / 2).all()
    for i in range(len(images)):
        mask = box_mask(boxes[i])
        assert not erased[i][mask].any()
        np.testing.assert_array_equal(erased[i][~mask], plain[i][~mask])
    assert (erased != plain).any()


def test_the_erased_rectangles_have_the_drawn_sizes_places_and_frequency():
    n = 20000
    spec = AugmentSpec("affine", erase=0.3)
    u = aug.erase_draws(aug.sample_keys(1, 0, n), spec)
    y0, x0, h, w = aug.erase_boxes(u, spec).T
    on = h > 0
    assert on.mean() == pytest.approx(0.3, abs=0.015)
    np.testing.assert_array_equal(on, u[:, 0] < 0.3)
    assert (w[~on] == 0).all() and (y0[~on] == 0).all() and (x0[~on] == 0).all()
    y0, x0, h, w = y0[on], x0[on], h[on], w[on]
    S = 784 * (0.02 + 0.23 * u[on, 1])
    assert (np.abs(h * w - S) <= h / 2).all()  # no side clipped at area 0.25: rounding only
    assert (h * w).mean() / 784 == pytest.approx((0.02 + 0.25) / 2, rel=0.02)
    r = np.exp(math.log(0.3) + math.log(3.3 / 0.3) * u[on, 2])  # h / w, log-uniform in [0.3, 3.3]
    assert (np.abs(h - np.sqrt(S * r)) <= 0.5).all()
    assert np.median(np.log(h / w)) == pytest.approx(math.log(math.sqrt(0.3 * 3.3)), abs=0.05)
    assert y0.min() == 0 and (y0 + h).max() == 28 and x0.min() == 0 and (x0 + w).max() == 28


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("kind", ["affine", "elastic"])
def test_flips_and_erasing_leave_every_other_distortion_bit_for_bit(images, backend_name, kind):
    """Their draws come after all the others: the images neither flipped nor erased are the
    images without flips and erasing, bit for bit, and with both at 0 nothing is drawn for them."""
    base = SPECS[kind]
    K = aug.elastic_grid(base.sigma)[0].shape[1] if kind == "elastic" else 0
    assert base.n_draws() == base.flip_draw() == 6 + 2 * K * K  # the draws before flips existed
    assert replace(base, flip=0.5).n_draws() == base.n_draws() + 1
    assert replace(base, erase=0.5).n_draws() == base.n_draws() + 6
    spec = replace(base, flip=0.4, erase=0.4)
    plain, both = run(backend_name, images, 9, 4, base), run(backend_name, images, 9, 4, spec)
    flipped = flips_of(spec, 9, 4, len(images))
    untouched = ~flipped & (boxes_of(spec, 9, 4, len(images))[:, 2] == 0)
    assert 0.2 < untouched.mean() < 0.5
    np.testing.assert_array_equal(both[untouched], plain[untouched])
    assert (np.abs(both[flipped] - plain[flipped]).max(axis=1) > 0).all()  # (erasing may hit background only)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(augment="affine", augment_flip=-0.1), r"augment_flip must be a probability in \[0, 1\], got -0\.1"),
        (dict(augment="affine", augment_flip=1.5), r"augment_flip must be a probability in \[0, 1\], got 1\.5"),
        (dict(augment="affine", augment_flip=float("nan")), r"augment_flip must be a probability in \[0, 1\], got nan"),
        (dict(augment="affine", augment_flip=True), r"augment_flip must be a probability in \[0, 1\], got True"),
        (dict(augment="affine", augment_erase=float("nan")), r"augment_erase must be a probability .* got nan"),
        (dict(augment="affine", augment_erase=2), r"augment_erase must be a probability in \[0, 1\], got 2"),
        (dict(augment="affine", augment_erase_area=0.01), r"augment_erase_area must be in \[0\.02, 1\], got 0\.01"),
        (dict(augment="affine", augment_erase_area=float("inf")), r"augment_erase_area must be in"),
        (dict(augment_flip=0.5), r"augment_flip=0\.5 needs augment=affine or augment=elastic"),
        (dict(augment_erase=1.0), r"augment_erase=1\.0 needs augment=affine or augment=elastic"),
    ],
)
def test_the_rules_refuse_bad_flip_and_erasing_options_with_a_clear_message(bad, message):
    with pytest.raises(FastnnError, match=message):
        TrainConfig(**bad).validate()


def test_flips_and_erasing_alone_are_an_affine_augmentation_with_zero_ranges():
    zero = dict(augment_rotation=0, augment_scale=0, augment_shear=0, augment_shift=0)
    TrainConfig(augment="affine", **zero, augment_flip=1, augment_erase=1, augment_erase_area=1).validate()
    TrainConfig(augment="affine", **{**zero, "augment_shift": 2.0}, augment_flip=0.5).validate()
    TrainConfig(augment="none", augment_flip=0.0, augment_erase=0.0, augment_erase_area=0.5).validate()
    spec = aug.spec_from_config(TrainConfig(augment="elastic", augment_flip=0.5, augment_erase=0.25))
    assert (spec.kind, spec.flip, spec.erase, spec.erase_area) == ("elastic", 0.5, 0.25, 0.25)


def test_new_augment_options_round_trip_through_checkpoint_model_file_and_report(tmp_path):
    """A run with flips and erasing records them in its checkpoint, its report and its model
    file; a checkpoint and a report written before they existed still load (flips and
    erasing off)."""
    config = TrainConfig(
        hidden=8,
        epochs=1,
        backend="numpy",
        augment="affine",
        augment_rotation=0,
        augment_flip=0.5,
        augment_erase=0.75,
        augment_erase_area=0.4,
    )
    X, y = digits(120, seed=2), np.arange(120) % 10
    path = tmp_path / checkpoint.NAME
    net, history = train(X[:100], y[:100], config, checkpoint_path=path)
    meta, _ = checkpoint.load(path)
    assert checkpoint.config_of(meta) == config
    splits = {"dev": (X[100:], y[100:])}
    result = RunResult("shapes", config, net, history, evaluate(net, splits, "numpy"), 100, 20)
    out = write_report(tmp_path / "report", result, splits, plots=False)

    def config_in(recorded):
        return TrainConfig(**{**recorded, "hidden": tuple(recorded["hidden"])}).validate()

    assert config_in(json.loads((out / "metrics.json").read_text())["config"]) == config
    assert config_in(load_network(out / "model.npz")[1]["config"]) == config
    # written before flips and erasing existed: the fields absent, their defaults (off) apply
    new = ("augment_flip", "augment_erase", "augment_erase_area")
    old = {**meta, "config": {k: v for k, v in meta["config"].items() if k not in new}}
    off = replace(config, augment_flip=0.0, augment_erase=0.0, augment_erase_area=0.25)
    assert checkpoint.config_of(old) == off
    assert config_in(old["config"]) == off  # a report's or a model file's config likewise


# --- the training loop -----------------------------------------------------------

RUN = dict(hidden=32, epochs=2, batch_size=32, lr=0.1, seed=1, optimizer="nesterov")


@pytest.fixture(scope="module")
def digit_data():
    X = digits(600, seed=1)
    y = np.arange(600) % 10
    X[np.arange(600), y * 70] = 1.0  # a label pixel, so that there is something to learn
    return X, y


@pytest.mark.parametrize("kind", ["affine", "elastic", "affine-flip-erase"])
def test_backends_agree_over_an_augmented_training_run(digit_data, kind, nb):
    X, y = digit_data
    X_before = X.copy()
    cfg = dict(RUN, augment=kind)
    if kind == "affine-flip-erase":
        cfg.update(augment="affine", augment_flip=0.5, augment_erase=0.5)
    ref, h_ref = train(X, y, TrainConfig(**cfg, backend="numpy"))
    net, h = train(X, y, TrainConfig(**cfg, backend="numba"))
    for p, q in zip(net.coefs + net.intercepts, ref.coefs + ref.intercepts):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-5 * max(1.0, np.abs(q).max()))
    for a, b in zip(h.epochs, h_ref.epochs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    np.testing.assert_array_equal(X, X_before)  # the caller's data are never touched
    again, _ = train(X, y, TrainConfig(**cfg, backend="numba"))
    np.testing.assert_array_equal(again.params.flat, net.params.flat)  # same seed and backend: bit-identical


def test_augmenting_changes_training_and_none_does_not(digit_data):
    X, y = digit_data
    plain, _ = train(X, y, TrainConfig(**RUN, backend="numba"))
    none, _ = train(X, y, TrainConfig(**RUN, backend="numba", augment="none", augment_rotation=30))
    np.testing.assert_array_equal(none.params.flat, plain.params.flat)
    distorted, _ = train(X, y, TrainConfig(**RUN, backend="numba", augment="affine"))
    assert np.abs(distorted.coefs[0] - plain.coefs[0]).max() > 1e-3


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_augmenting_other_than_28x28_images_is_refused(backend_name):
    X = np.random.default_rng(0).random((64, 100), dtype=np.float32)
    y = np.arange(64) % 3
    with pytest.raises(FastnnError, match="28x28"):
        train(X, y, TrainConfig(hidden=4, epochs=1, backend=backend_name, augment="elastic"))


@pytest.mark.parametrize(
    "bad",
    [
        dict(augment="rotate"),
        dict(augment=None),
        dict(augment_rotation=-1),
        dict(augment_rotation=200),
        dict(augment_scale=1.0),
        dict(augment_scale=float("nan")),
        dict(augment_shear=-0.1),
        dict(augment_shift=29),
        dict(augment_alpha=-1),
        dict(augment_sigma=0.5),
        dict(augment_sigma=True),
    ],
)
def test_invalid_augmentation_options_raise_fastnn_error(bad):
    with pytest.raises(FastnnError):
        TrainConfig(**bad).validate()


@pytest.mark.parametrize("name", ["elastic", "with-erasing"])
@pytest.mark.parametrize("threshold", [0.4, -1.0])
def test_the_numba_workspace_adopts_the_augmented_data_as_prepare_would(images, threshold, name, monkeypatch):
    from fastnn.backends._numba_sparse import compress_rows

    nb = get_backend("numba")
    monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", threshold)
    out = np.empty_like(images)
    net = init_network(784, 16, 10, 0)
    ws = nb.make_workspace(net, 32)
    spec = SPECS["elastic"] if name == "elastic" else FASHION_SPECS["elastic-flip-erase-0.5"]
    nb.augment(images, 0, 1, spec, out, ws)
    expected = nb.make_workspace(net, 32)
    expected.prepare(out.copy())
    assert ws.source is out and ws.sparse == expected.sparse == (threshold > 0)
    if ws.sparse:
        for a, b in zip(ws.rows, compress_rows(out)):
            np.testing.assert_array_equal(a, b)


def test_distort_gives_what_training_sees(images):
    spec = SPECS["elastic"]
    as_images = aug.distort(images[:10].reshape(10, 28, 28), spec, seed=4, epoch=2)
    assert as_images.shape == (10, 28, 28)
    np.testing.assert_array_equal(as_images.reshape(10, 784), run("numpy", images[:10], 4, 2, spec))
    with pytest.raises(FastnnError, match="28x28"):
        aug.distort(np.zeros((3, 100)), spec)
