"""The numba backend's sparse first layer, against float64 and against its dense path.

The kernel tests (``test_kernels.py``) already run every numba kernel on both
paths (``conftest._NUMBA_PATHS``); this file covers what only the sparse path
has: the compressed rows and columns, the register-tile widths, the batches
that stress a pixel-major gradient (all-zero images, fully dense rows, a pixel
lit in one image only), and the choice of path by density.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn.activations import make_targets
from fastnn.backends import get_backend
from fastnn.backends._numba_sparse import TILES, batch_columns, compress_rows, rows_axpy
from fastnn.config import TrainConfig
from fastnn.network import init_network
from fastnn.optimizers import OPTIMIZERS, make_optimizer
from fastnn.training import train

import naive
from conftest import prototype_data

F32 = np.float32


@pytest.fixture
def sparse_nb(monkeypatch):
    """The numba backend with the sparse path forced, whatever the data's density."""
    nb = get_backend("numba")
    monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", 1.0)
    return nb


def _sparse_batch(rng, n, d, density):
    X = rng.random((n, d), dtype=F32)
    X[rng.random((n, d)) >= density] = 0.0
    return X


def test_compressed_rows_hold_every_nonzero_once_in_pixel_order():
    rng = np.random.default_rng(0)
    X = _sparse_batch(rng, 50, 300, 0.2)
    X[7] = 0.0  # an all-zero image
    indptr, idx, val = compress_rows(X)
    assert indptr[0] == 0 and indptr[-1] == np.count_nonzero(X) and idx.dtype == np.uint16
    back = np.zeros_like(X)
    for i in range(len(X)):
        cols = idx[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(cols.astype(int)) > 0)
        back[i, cols] = val[indptr[i] : indptr[i + 1]]
    np.testing.assert_array_equal(back, X)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_batch_columns_are_the_transpose_of_the_batch_rows(split):
    """Built in ``split`` pixel ranges (as threads do), the columns hold each batch image once."""
    rng = np.random.default_rng(1)
    d, m = 97, 23
    X = _sparse_batch(rng, 60, d, 0.3)
    X[:, 5] = 0.0  # a pixel no image lights
    X[:, 6] = 0.0
    X[11, 6] = 0.5  # a pixel lit in one image only
    indptr, idx, val = compress_rows(X)
    perm = rng.permutation(60).astype(np.int64)
    lo = 30
    cend, crow, cval = np.empty(d, np.int64), np.empty(m * d, np.uint16), np.empty(m * d, F32)
    for t in range(split):
        batch_columns(indptr, idx, val, perm, lo, m, d * t // split, d * (t + 1) // split, cend, crow, cval)
    Xb = X[perm[lo : lo + m]]
    for p in range(d):
        rows = crow[p * m : cend[p]].astype(int)
        assert np.all(np.diff(rows) > 0)  # batch order: gradient sums run as the dense ones do
        np.testing.assert_array_equal(rows, np.flatnonzero(Xb[:, p]))
        np.testing.assert_array_equal(cval[p * m : cend[p]], Xb[rows, p])
    assert cend[5] == 5 * m and cend[6] - 6 * m == (perm[lo : lo + m] == 11).sum()


@pytest.mark.parametrize("width", [1, 7, 15, 16, 17, 48, 63, 64, 65, 80, 100, 129])
def test_rows_axpy_sums_each_column_for_every_tile_width(width):
    """Widths around the tile sizes (64, 16) and the scalar remainder, at an offset column."""
    assert TILES == (64, 16)
    rng = np.random.default_rng(width)
    src = rng.standard_normal((40, 140)).astype(F32)
    idx = rng.choice(40, size=25, replace=False).astype(np.uint16)
    val = rng.random(25, dtype=F32)
    out = np.full(width + 3, np.nan, F32)
    flat = np.concatenate([np.zeros(11, F32), src.ravel()])  # the matrix at an offset of a flat buffer
    rows_axpy(flat, 11, 140, 5, width, idx, val, 2, 23, out)
    sel, v = idx[2:23].astype(int), val[2:23]
    exact = v.astype(np.float64) @ src[sel, 5 : 5 + width].astype(np.float64)
    bound = naive.gamma(21, naive.unit(F32)) * (np.abs(v).astype(np.float64) @ np.abs(src[sel, 5 : 5 + width]))
    naive.assert_within(out[:width], exact, bound, f"width {width}")
    assert np.isnan(out[width:]).all()  # nothing written past the width


# n, batch, d, h, c; the batches: see _special_data
SPECIAL = {
    "all-zero-images": (64, 16, 784, 65, 10),
    "dense-rows": (40, 16, 50, 17, 3),
    "one-pixel-one-image": (48, 16, 30, 7, 4),
    "h1": (40, 20, 60, 1, 3),
    "h100-odd-batch": (75, 13, 784, 100, 10),
    "h800": (60, 32, 784, 800, 10),
}


def _special_data(case, rng):
    n, bs, d, h, c = SPECIAL[case]
    X = _sparse_batch(rng, n, d, 0.2)
    if case == "all-zero-images":
        X[::3] = 0.0
    elif case == "dense-rows":
        X = rng.random((n, d), dtype=F32) + F32(0.01)  # every pixel of every image nonzero
    elif case == "one-pixel-one-image":
        X[:] = 0.0
        X[17, 9] = 0.8
    y = rng.integers(0, c, n)
    return X, y, bs, h, c


def _sgd_chunk(be, net, X, y, perm, bs, lr=0.3, **opt):
    """Plain SGD (or ``opt``) over all of ``perm`` on a copy of ``net``; returns (net, loss, right, ws)."""
    net = net.copy()
    c = net.n_outputs
    ws = be.make_workspace(net, bs)
    n_steps = math.ceil(len(perm) / bs)
    optimizer = make_optimizer(opt.pop("kind", "sgd"), net.layout, **opt)
    loss, right = be.train_steps(
        net, X, make_targets("softmax", y, c), perm, 0, len(perm), bs, np.full(n_steps, lr), optimizer, ws
    )
    return net, loss, right, ws


def _with_biases(rng, d, h, c):
    net = init_network(d, h, c, seed=3)
    for b in net.intercepts:
        b[...] = 0.1 * rng.standard_normal(b.shape)
    return net


@pytest.mark.parametrize("case", SPECIAL, ids=SPECIAL)
def test_sparse_training_steps_match_float64_sgd_on_hard_batches(sparse_nb, case):
    rng = np.random.default_rng(sum(map(ord, case)))
    X, y, bs, h, c = _special_data(case, rng)
    n, d = X.shape
    net = _with_biases(rng, d, h, c)
    perm = rng.permutation(n).astype(np.int64)
    trained, loss, right, ws = _sgd_chunk(sparse_nb, net, X, y, perm, bs)
    assert ws.sparse
    coefs, intercepts = [np.array(W) for W in net.coefs], [np.array(b) for b in net.intercepts]
    ones = np.ones(n)
    ref_W, ref_b, ref_loss, ref_right = naive.train_steps(
        X, y, None, ones, perm, 0, n, bs, np.full(math.ceil(n / bs), 0.3), coefs, intercepts, "relu", "softmax"
    )
    naive.assert_train_close(
        trained.coefs,
        trained.intercepts,
        ref_W,
        ref_b,
        coefs,
        intercepts,
        math.ceil(n / bs),
        naive.unit(F32),
        f"{case}: ",
    )
    assert loss == pytest.approx(ref_loss, rel=1e-5) and abs(right - ref_right) <= 1
    if case == "one-pixel-one-image":
        # Plain SGD moves only the rows of pixels some image lit: here row 9 alone.
        moved = np.flatnonzero(np.any(trained.coefs[0] != net.coefs[0], axis=1))
        np.testing.assert_array_equal(moved, [9])


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_rows_no_image_lit_still_decay_under_every_optimizer(sparse_nb, np_backend, kind):
    """With momentum, Adam or weight decay a first-layer row whose pixel is dark in every image
    of a batch still moves (its gradient is zero, not absent), exactly as in the reference."""
    rng = np.random.default_rng(4)
    X = _sparse_batch(rng, 60, 40, 0.3)
    X[:, :10] = 0.0  # pixels 0..9 dark in every image: their rows get a zero gradient throughout
    y = rng.integers(0, 3, 60)
    perm = np.arange(60, dtype=np.int64)
    net = init_network(40, 9, 3, 0)
    results = [
        _sgd_chunk(be, net, X, y, perm, 15, 2e-2 if kind == "adam" else 0.2, kind=kind, weight_decay=1e-2)[0]
        for be in (np_backend, sparse_nb)
    ]
    np.testing.assert_allclose(
        results[1].params.flat,
        results[0].params.flat,
        rtol=0,
        atol=1e-5 * max(1.0, float(np.abs(results[0].params.flat).max())),
    )
    assert np.all(results[1].coefs[0][:10] != net.coefs[0][:10])  # decayed, not skipped


def test_a_workspace_refreshed_after_x_changed_in_place_trains_on_the_new_values(sparse_nb):
    rng = np.random.default_rng(6)
    X = _sparse_batch(rng, 64, 30, 0.3)
    y = rng.integers(0, 3, 64)
    perm = np.arange(64, dtype=np.int64)
    net = init_network(30, 8, 3, 0)
    _, _, _, ws = _sgd_chunk(sparse_nb, net, X, y, perm[:32], 16, 0.1)
    X *= 3.0
    ws.prepare(X, refresh=True)
    targets = make_targets("softmax", y, 3)
    a, b = net.copy(), net.copy()
    for trained, workspace in ((a, ws), (b, sparse_nb.make_workspace(net, 16))):
        sparse_nb.train_steps(
            trained, X, targets, perm, 32, 64, 16, np.full(2, 0.1), make_optimizer("sgd", net.layout), workspace
        )
    np.testing.assert_array_equal(a.params.flat, b.params.flat)


def test_the_path_is_chosen_by_the_density_of_the_training_data(monkeypatch):
    nb = get_backend("numba")
    rng = np.random.default_rng(5)
    net = init_network(100, 8, 3, 0)
    threshold = nb.SPARSE_MAX_DENSITY
    assert 0.0 < threshold < 1.0
    for density, expect in ((0.19, True), (threshold - 0.05, True), (threshold + 0.1, False), (1.0, False)):
        X = _sparse_batch(rng, 200, 100, density) if density < 1 else rng.random((200, 100), dtype=F32) + 1
        ws = nb.make_workspace(net, 32)
        ws.prepare(X)
        assert ws.sparse is expect, density
    monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", 0.1)
    ws = nb.make_workspace(net, 32)
    ws.prepare(_sparse_batch(rng, 200, 100, 0.19))
    assert not ws.sparse


@pytest.mark.parametrize("hidden", [(48,), (32, 24)], ids=["one-hidden", "two-hidden"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_whole_run_on_either_path_learns_what_the_reference_learns(monkeypatch, optimizer, hidden):
    """Two epochs of `train` on sparse digits: both numba paths end within float32 drift of
    the NumPy reference, and predict the same labels for nearly all samples."""
    X, y = prototype_data(n=1200, noise=0.0)
    assert np.count_nonzero(X) < 0.5 * X.size
    config = dict(
        hidden=hidden,
        epochs=2,
        batch_size=64,
        lr=2e-3 if optimizer == "adam" else 0.1,
        optimizer=optimizer,
        weight_decay=1e-4,
        schedule="onecycle",
    )
    ref, _ = train(X, y, TrainConfig(backend="numpy", **config))
    nb = get_backend("numba")
    for density in (-1.0, 1.0):
        monkeypatch.setattr(nb, "SPARSE_MAX_DENSITY", density)
        net, history = train(X, y, TrainConfig(backend="numba", **config))
        np.testing.assert_allclose(
            net.params.flat, ref.params.flat, rtol=0, atol=1e-4 * max(1.0, float(np.abs(ref.params.flat).max()))
        )
        assert np.mean(net.predict(X) == ref.predict(X)) >= 0.995
