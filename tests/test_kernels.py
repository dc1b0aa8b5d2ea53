"""Every kernel of both backends against the float64 references in ``tests/naive.py``,
then the Numba backend against the NumPy one.

Comparing each backend with float64 (not only with each other) catches a mistake
the two share.  The references take the *same float32 inputs* and compute in
float64, whose own error (~1e-16 relative) is negligible, so what remains is the
float32 rounding of the kernel under test.  Neither backend uses fastmath.

Tolerances (u = 2**-24 ~ 6e-8, the unit roundoff of float32; eps32 = 2u)
----------------------------------------------------------------------------
* Matmul-like entries are dot products s = sum_{i<k} a_i b_i.  In float32, in any
  summation order with or without FMA, |s_hat - s| <= k u sum |a_i b_i|
  (Higham, *Accuracy and Stability*, Thm 3.5, with Jeannerod & Rump's 2013 k u
  in place of gamma_k).  That worst case is linear in k; blocked sgemm errors
  behave like a random walk and grow like sqrt(k) u (Higham & Mary, SISC 2019).
  We bound every entry by ``naive.gamma(k) * (|A| @ |B|)`` with
  gamma(k) = u min(k, 8 sqrt(k)): the rigorous bound up to k = 64, eight standard
  deviations of the random-walk model above.  A bias adds one term (k + 1).
  Each layer is checked given the kernel's own input to that layer (logits from
  its A1, dW1 from its dZ1) so bounds never compound; where that is impossible
  (predict_logits, numba vs numpy) the earlier layer's bound is pushed through
  |W2| or |Xb^T|.
  Scale: for d = 784 the A1 bound is ~2e-4 absolute on values ~0.5; for h = 800
  the logits bound ~1e-4.  Measured: errors reach <= 0.25 of the bound for
  k >= 128 and <= 0.4 for k = 10; for k = 1 and 2 (batch of one, one hidden unit)
  they reach the bound's exact limit (a single rounding), which they cannot pass.
* Softmax cross-entropy: per sample u(|z_y - z_max| + |loss_i| + 2c + 4) on the loss
  and (2c + 8)u/m on dlogits, both doubled (derivation: ``naive.softmax_bounds``).
  The number correct must match exactly (argmax of the same float32 logits).
* SGD update p - lr dp: 2u(2|lr dp| + |p|).
* Several SGD steps (train_steps): no clean a-priori bound (a ReLU whose
  pre-activation is within rounding of 0 may switch on in one run and not the
  other), so an empirical one: 1e-4 of the largest change float64 SGD made to
  that parameter, plus 2u|p| per step; measured at most 2e-6 of the change,
  while the SGD mistakes below move some parameter by >= 0.06 of it.

The bounds have teeth: ``test_tolerances_reject_plausible_mistakes`` pushes
deliberately wrong results (a missing bias, no ReLU, a hidden unit dropped at a
thread-slice boundary, rows off by one, an unmasked db1, the batch mean taken
twice, a skipped partial batch, a stale W2, ...) through the same checks and
requires every one of them to fail.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pytest

import naive
from fastnn.model import init_network

F32 = np.float32

# (m, d, h, c): batch of 1; a partial batch with 7 hidden units; one hidden unit;
# 128 and 800 hidden units; a tiny network with fewer hidden units than threads.
SHAPES = {
    "batch1": (1, 784, 128, 10),
    "partial37-h7": (37, 784, 7, 10),
    "h1": (64, 784, 1, 10),
    "h128": (128, 784, 128, 10),
    "h800": (50, 784, 800, 10),
    "tiny": (5, 3, 2, 2),
}


def _rng(*key) -> np.random.Generator:
    """A generator seeded from a readable key (crc32 of strings: stable across processes)."""
    return np.random.default_rng([zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key])


def _params(rng, d, h, c):
    """He-initialised weights and clearly non-zero biases (so a dropped bias shows)."""
    W1 = (rng.standard_normal((d, h)) * math.sqrt(2 / d)).astype(F32)
    W2 = (rng.standard_normal((h, c)) * math.sqrt(2 / h)).astype(F32)
    b1 = (0.1 * rng.standard_normal(h)).astype(F32)
    b2 = (0.5 * rng.standard_normal(c)).astype(F32)
    return W1, b1, W2, b2


def _layout(a, kind):
    """``a``'s values in the given memory layout: C, F (Fortran) or a strided view."""
    a = np.asarray(a)
    if kind == "C":
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    return view


def _out(shape, kind="C", dtype=F32):
    """An output array of that layout, filled with NaN so that unwritten entries fail."""
    return _layout(np.full(shape, np.nan, dtype), kind)


def _batch(rng, m, d, c):
    return rng.random((m, d), dtype=F32), rng.integers(0, c, m)


def _fresh_backward_inputs(rng, m, d, h, c):
    """Float32 inputs of a backward pass as training produces them (A1 has exact ReLU zeros)."""
    Xb, yb = _batch(rng, m, d, c)
    W1, b1, W2, b2 = _params(rng, d, h, c)
    A1, logits = naive.forward(Xb, W1, b1, W2, b2)
    dlogits = naive.softmax_xent(logits.astype(F32), yb)[2]
    return Xb, A1.astype(F32), W2, dlogits.astype(F32)


def _backward_outputs(m, d, h, c, kind="C", rows=None):
    """NaN-filled dW1, db1, dW2, db2, dA1; dA1 sliced [:m] from ``rows`` rows as in a workspace."""
    dA1 = _out((rows or m, h), kind)[:m]
    return [_out((d, h), kind), _out(h, kind), _out((h, c), kind), _out(c, kind), dA1]


# --- permutation ---------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _naive_permutation(n, seed, epoch):
    return naive.permutation(n, seed, epoch)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000, 60000])
def test_permutation_holds_every_index_exactly_once(backend, n):
    out = np.full(n, -1, np.int64)
    backend.permutation(n, 7, 3, out)
    assert naive.is_permutation(out, n)
    np.testing.assert_array_equal(out, _naive_permutation(n, 7, 3))


def test_permutation_is_a_function_of_seed_and_epoch(backend):
    n = 1000

    def perm(seed, epoch):
        out = np.empty(n, np.int64)
        backend.permutation(n, seed, epoch, out)
        return out

    np.testing.assert_array_equal(perm(5, 2), perm(5, 2))
    orders = [perm(seed, epoch) for seed in (0, 1, 2**40 + 1) for epoch in (0, 1, 2)]
    assert len({o.tobytes() for o in orders}) == len(orders)
    for o in orders:  # a shuffle, not a near-identity: ~1 fixed point expected
        assert np.count_nonzero(o == np.arange(n)) < 10


@pytest.mark.parametrize("n", [1, 4, 5, 16, 17, 64, 65, 4097, 60000])
def test_numba_permutation_equals_numpy_exactly(nb, np_backend, n):
    for seed, epoch in [(0, 0), (1, 0), (0, 1), (12345, 14), (2**40 + 3, 99)]:
        a, b = np.empty(n, np.int64), np.empty(n, np.int64)
        nb.permutation(n, seed, epoch, a)
        np_backend.permutation(n, seed, epoch, b)
        np.testing.assert_array_equal(a, b)


# --- gather --------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("m", [1, 37, 64])
def test_gather_copies_the_indexed_rows_into_the_first_m_buffer_rows(backend, layout, m):
    rng = _rng("gather", m)
    n, d, rows = 100, 13, 64
    X = _layout(rng.random((n, d), dtype=F32), layout)
    y = rng.integers(0, 10, n)
    idx = rng.permutation(n)[:m]
    Xb, yb = np.full((rows, d), np.nan, F32), np.full(rows, -1, np.int64)
    backend.gather(X, y, idx, Xb[:m], yb[:m])
    X_ref, y_ref = naive.gather(X, y, idx)
    np.testing.assert_array_equal(Xb[:m], X_ref)  # a copy: exact
    np.testing.assert_array_equal(yb[:m], y_ref)
    assert np.isnan(Xb[m:]).all() and (yb[m:] == -1).all(), "wrote past the m rows of the batch"


@pytest.mark.parametrize("bad", [100, 101, -101, 2**40])
def test_gather_rejects_an_index_out_of_range(backend, bad):
    rng = _rng("gather-bad")
    X, y = rng.random((100, 5), dtype=F32), np.arange(100)
    with pytest.raises(IndexError):
        backend.gather(X, y, np.array([0, bad, 3]), np.empty((3, 5), F32), np.empty(3, np.int64))


# --- forward -------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_forward_matches_float64_reference(backend, shape):
    m, d, h, c = shape
    rng = _rng("forward", *shape)
    Xb, _ = _batch(rng, m, d, c)
    params = _params(rng, d, h, c)
    rows = m + 7  # workspace buffers are longer than a partial batch and sliced [:m]
    A1, logits = _out((rows, h))[:m], _out((rows, c))[:m]
    backend.forward(Xb, *params, A1, logits)
    naive.check_forward(Xb, *params, A1, logits)


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_forward_reads_any_layout_and_writes_into_the_callers_arrays(backend, layout):
    m, d, h, c = 20, 30, 9, 4
    rng = _rng("forward-layout", layout)
    Xb, _ = _batch(rng, m, d, c)
    params = _params(rng, d, h, c)
    A1, logits = _out((m, h), layout), _out((m, c), layout)
    backend.forward(_layout(Xb, layout), *(_layout(p, layout) for p in params), A1, logits)
    naive.check_forward(Xb, *params, A1, logits)


def test_forward_rejects_inputs_whose_width_does_not_match_W1(backend):
    """Xb (4, 6) against W1 (5, 3): the reference raises; a compiled kernel must not
    read rows with the wrong stride and return numbers."""
    rng = _rng("forward-shape")
    W1, b1, W2, b2 = _params(rng, 5, 3, 2)
    with pytest.raises(ValueError):
        backend.forward(rng.random((4, 6), dtype=F32), W1, b1, W2, b2, _out((4, 3)), _out((4, 2)))


# --- softmax cross-entropy -------------------------------------------------------


@pytest.mark.parametrize("m, c, scale", [(1, 10, 1.0), (1, 2, 5.0), (37, 10, 3.0), (128, 10, 30.0),
                                         (64, 2, 0.01)])
def test_softmax_xent_matches_float64_reference(backend, m, c, scale):
    rng = _rng("softmax", m, c)
    logits = (scale * rng.standard_normal((m, c))).astype(F32)
    yb = rng.integers(0, c, m)
    dlogits = _out((m + 3, c))[:m]
    loss, correct = backend.softmax_xent(logits, yb, dlogits)
    assert type(loss) is float and type(correct) is int
    naive.check_softmax_xent(logits, yb, loss, correct, dlogits)


EXTREME_LOGITS = {
    "pm1e4": [[1e4, -1e4, 0.0], [-1e4, 0.0, 1e4]],
    "all-equal": [[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-1e30, -1e30, -1e30], [3e38, 3e38, 3e38]],
    "huge-positive": [[3e38, 2.9e38, 1e38], [3.4e38, 3.4e38, -1.0]],
    "huge-negative": [[-3e38, -2.9e38, -3.4e38], [-1e37, -3e38, -2e38]],
    "span-3e38": [[1.5e38, -1.5e38, 0.0]],  # the widest span float32 z_y - z_max still holds
    "tiny": [[1e-45, -1e-45, 0.0], [1e-38, 0.0, -1e-38]],
}


@pytest.mark.parametrize("case", EXTREME_LOGITS, ids=EXTREME_LOGITS)
def test_softmax_xent_is_stable_for_extreme_logits(backend, case):
    """Every row with every label: finite loss and gradient matching float64 log-sum-exp."""
    rows = np.array(EXTREME_LOGITS[case], F32)
    c = rows.shape[1]
    logits = np.repeat(rows, c, axis=0)
    yb = np.tile(np.arange(c), len(rows))
    dlogits = _out(logits.shape)
    loss, correct = backend.softmax_xent(logits, yb, dlogits)
    assert math.isfinite(loss) and np.isfinite(dlogits).all()
    naive.check_softmax_xent(logits, yb, loss, correct, dlogits)


def test_softmax_xent_loss_is_finite_when_the_logit_span_exceeds_float32(backend):
    """Logits +-3e38 are finite float32, and so is every probability; the loss of the
    wrong label is 6e38, finite as the float the kernel returns, but z_y - z_max
    overflows if it is formed in float32."""
    logits = np.array([[3e38, -3e38]], F32)
    dlogits = _out((1, 2))
    loss, correct = backend.softmax_xent(logits, np.array([1]), dlogits)
    assert math.isfinite(loss) and loss == pytest.approx(naive.softmax_xent(logits, [1])[0], rel=1e-6)
    assert correct == 0 and np.isfinite(dlogits).all()


def test_softmax_xent_writes_a_strided_gradient_into_the_callers_array(backend):
    rng = _rng("softmax-layout")
    logits = _layout((3 * rng.standard_normal((9, 4))).astype(F32), "F")
    yb = rng.integers(0, 4, 9)
    dlogits = _out((9, 4), "strided")
    loss, correct = backend.softmax_xent(logits, yb, dlogits)
    naive.check_softmax_xent(logits, yb, loss, correct, dlogits)


# --- backward and update ----------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_float64_reference(backend, shape):
    m, d, h, c = shape
    Xb, A1, W2, dlogits = _fresh_backward_inputs(_rng("backward", *shape), m, d, h, c)
    outs = _backward_outputs(m, d, h, c, rows=m + 7)
    backend.backward(Xb, A1, W2, dlogits, *outs)
    naive.check_backward(Xb, A1, W2, dlogits, *outs)


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_backward_reads_any_layout_and_writes_into_the_callers_arrays(backend, layout):
    m, d, h, c = 20, 30, 9, 4
    Xb, A1, W2, dlogits = _fresh_backward_inputs(_rng("backward-layout", layout), m, d, h, c)
    outs = _backward_outputs(m, d, h, c, layout)
    backend.backward(*(_layout(a, layout) for a in (Xb, A1, W2, dlogits)), *outs)
    naive.check_backward(Xb, A1, W2, dlogits, *outs)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_update_subtracts_lr_times_gradient_in_place(backend, layout):
    rng = _rng("update", layout)
    d, h, c = 50, 7, 3
    before = _params(rng, d, h, c)
    grads = tuple(rng.standard_normal(p.shape).astype(F32) for p in before)
    params = [_layout(p.copy(), layout) for p in before]
    backend.update(*params, *(_layout(g, layout) for g in grads), 0.3)
    naive.check_update(before, grads, 0.3, params)


# --- prediction ----------------------------------------------------------------


@pytest.mark.parametrize("n, h", [(1, 128), (255, 7), (256, 1), (257, 800), (1000, 128), (4097, 16)])
def test_predict_logits_matches_float64_reference(backend, n, h):
    """Row counts around the 256-row chunks of the Numba kernel and the 4096-row ones of NumPy's."""
    d, c = 784, 10
    rng = _rng("predict", n, h)
    X, _ = _batch(rng, n, d, c)
    params = _params(rng, d, h, c)
    out = _out((n, c))
    backend.predict_logits(X, *params, out)
    naive.assert_within(out, naive.predict_logits(X, *params), naive.forward_bounds(X, *params)[1], "logits")


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_predict_logits_reads_any_layout_and_writes_into_the_callers_array(backend, layout):
    rng = _rng("predict-layout", layout)
    X, _ = _batch(rng, 300, 40, 3)
    params = _params(rng, 40, 9, 3)
    out = _out((300, 3), layout)
    backend.predict_logits(_layout(X, layout), *(_layout(p, layout) for p in params), out)
    naive.assert_within(out, naive.predict_logits(X, *params), naive.forward_bounds(X, *params)[1], "logits")


# --- whole chunks of SGD ---------------------------------------------------------

# n, batch size, start, stop, d, h, c, lr
TRAIN_CASES = {
    "epoch-partial-last": (150, 32, 0, 150, 784, 128, 10, 0.1),
    "mid-epoch-chunk-h800": (150, 32, 40, 113, 784, 800, 10, 0.5),
    "batch-larger-than-chunk": (37, 64, 0, 37, 20, 7, 3, 0.5),
    "batch1-h1": (20, 1, 0, 20, 5, 1, 2, 0.1),
}


def _train_problem(case):
    n, bs, start, stop, d, h, c, lr = TRAIN_CASES[case]
    rng = _rng("train", case)
    X, y = _batch(rng, n, d, c)
    net = init_network(d, h, c, seed=3)
    net.b1[:] = 0.1 * rng.standard_normal(h)
    net.b2[:] = 0.5 * rng.standard_normal(c)
    perm = _naive_permutation(n, 3, 1)
    return X, y, perm, start, stop, bs, lr, net


def _run_train_steps(backend, X, y, perm, start, stop, bs, lr, net, ws=None):
    params = [p.copy() for p in (net.W1, net.b1, net.W2, net.b2)]
    if ws is None:
        ws = backend.make_workspace(min(bs, len(X)), net.n_features, net.hidden, net.n_classes)
    loss, correct = backend.train_steps(X, y, perm, start, stop, bs, lr, *params, ws)
    assert type(loss) is float and type(correct) is int
    return params, loss, correct


def _check_against_naive_sgd(params, loss, correct, X, y, perm, start, stop, bs, lr, net, what=""):
    before = (net.W1, net.b1, net.W2, net.b2)
    ref, loss_ref, correct_ref = naive.train_steps(X, y, perm, start, stop, bs, lr, *before)
    naive.assert_sgd_close(params, ref, before, math.ceil((stop - start) / bs), what)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    # Loss and correct are measured before each update, on logits within rounding of
    # float64's, so the count matches unless a logit pair sits within ~1e-6 of a tie.
    assert abs(correct - correct_ref) <= 1


@pytest.mark.parametrize("case", TRAIN_CASES, ids=TRAIN_CASES)
def test_train_steps_matches_float64_sgd(backend, case):
    X, y, perm, start, stop, bs, lr, net = _train_problem(case)
    params, loss, correct = _run_train_steps(backend, X, y, perm, start, stop, bs, lr, net)
    _check_against_naive_sgd(params, loss, correct, X, y, perm, start, stop, bs, lr, net)


def test_train_steps_reads_fortran_order_inputs(backend):
    X, y, perm, start, stop, bs, lr, net = _train_problem("batch-larger-than-chunk")
    params, loss, correct = _run_train_steps(backend, np.asfortranarray(X), y, perm, start, stop, bs, lr, net)
    _check_against_naive_sgd(params, loss, correct, X, y, perm, start, stop, bs, lr, net)


def test_train_steps_updates_non_contiguous_parameters_in_place(backend):
    """Parameters in Fortran order (a Network built from transposed arrays) must be
    trained like C-ordered ones, not silently left unchanged."""
    X, y, perm, start, stop, bs, lr, net = _train_problem("batch-larger-than-chunk")
    params = [np.asfortranarray(p.copy()) for p in (net.W1, net.b1, net.W2, net.b2)]
    ws = backend.make_workspace(min(bs, len(X)), net.n_features, net.hidden, net.n_classes)
    loss, correct = backend.train_steps(X, y, perm, start, stop, bs, lr, *params, ws)
    _check_against_naive_sgd(params, loss, correct, X, y, perm, start, stop, bs, lr, net)


# --- numba against numpy, thread counts, dtypes ---------------------------------------


def test_numba_matches_numpy_kernel_by_kernel(nb, np_backend):
    """Both float32, each within its bound of float64, so within twice the bound of each other."""
    m, d, h, c = 37, 784, 128, 10
    rng = _rng("pairwise")
    Xb, yb = _batch(rng, m, d, c)
    params = _params(rng, d, h, c)
    bA1, bL = naive.forward_bounds(Xb, *params)
    fwd = {}
    for B in (nb, np_backend):
        A1, logits = _out((m, h)), _out((m, c))
        B.forward(Xb, *params, A1, logits)
        fwd[B.NAME] = A1, logits
    naive.assert_within(fwd["numba"][0], fwd["numpy"][0], 2 * bA1, "A1")
    naive.assert_within(fwd["numba"][1], fwd["numpy"][1], 2 * bL, "logits")

    logits = fwd["numpy"][1]
    b_loss, b_dlogits = naive.softmax_bounds(logits, yb)
    sm = {}
    for B in (nb, np_backend):
        dlogits = _out((m, c))
        sm[B.NAME] = B.softmax_xent(logits, yb, dlogits), dlogits
    assert sm["numba"][0][1] == sm["numpy"][0][1]
    assert abs(sm["numba"][0][0] - sm["numpy"][0][0]) <= 2 * b_loss
    naive.assert_within(sm["numba"][1], sm["numpy"][1], 2 * b_dlogits, "dlogits")

    A1, dlogits = fwd["numpy"][0], sm["numpy"][1]
    bounds = naive.backward_bounds(Xb, A1, params[2], dlogits)
    bwd = {}
    for B in (nb, np_backend):
        outs = _backward_outputs(m, d, h, c)
        B.backward(Xb, A1, params[2], dlogits, *outs)
        bwd[B.NAME] = outs
    for name, a, b in zip(("dW1", "db1", "dW2", "db2", "dA1"), bwd["numba"], bwd["numpy"]):
        naive.assert_within(a, b, 2 * bounds[name], name)

    grads = bwd["numpy"][:4]
    ub = naive.update_bound(params, grads, 0.2)
    upd = {}
    for B in (nb, np_backend):
        upd[B.NAME] = [p.copy() for p in params]
        B.update(*upd[B.NAME], *grads, 0.2)
    for name, a, b, bound in zip(("W1", "b1", "W2", "b2"), upd["numba"], upd["numpy"], ub):
        naive.assert_within(a, b, 2 * bound, name)

    pred = {}
    for B in (nb, np_backend):
        pred[B.NAME] = _out((m, c))
        B.predict_logits(Xb, *params, pred[B.NAME])
    naive.assert_within(pred["numba"], pred["numpy"], 2 * bL, "predict_logits")

    for case in ("epoch-partial-last", "batch-larger-than-chunk"):
        X, y, perm, start, stop, bs, lr, net = _train_problem(case)
        a, loss_a, correct_a = _run_train_steps(nb, X, y, perm, start, stop, bs, lr, net)
        b, loss_b, correct_b = _run_train_steps(np_backend, X, y, perm, start, stop, bs, lr, net)
        naive.assert_sgd_close(a, b, (net.W1, net.b1, net.W2, net.b2), math.ceil((stop - start) / bs), f"{case} ")
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and abs(correct_a - correct_b) <= 1


def test_numba_results_do_not_depend_on_the_thread_count(nb, numba_threads, thread_counts):
    """Hidden units are split across threads: each count must give a correct answer, and
    a workspace made under one count must still work under another."""
    m, d, h, c = 37, 784, 128, 10
    rng = _rng("threads")
    Xb, _ = _batch(rng, m, d, c)
    params = _params(rng, d, h, c)
    bw_in = _fresh_backward_inputs(rng, m, d, h, c)
    X, y, perm, start, stop, bs, lr, net = _train_problem("epoch-partial-last")
    with numba_threads(max(thread_counts)):
        ws = nb.make_workspace(bs, d, net.hidden, net.n_classes)
    results = {}
    for t in thread_counts + thread_counts[::-1]:
        with numba_threads(t):
            A1, logits = _out((m, h)), _out((m, c))
            nb.forward(Xb, *params, A1, logits)
            naive.check_forward(Xb, *params, A1, logits)
            outs = _backward_outputs(m, d, h, c)
            nb.backward(*bw_in, *outs)
            naive.check_backward(*bw_in, *outs)
            pred = _out((m, c))
            nb.predict_logits(Xb, *params, pred)
            trained, loss, correct = _run_train_steps(nb, X, y, perm, start, stop, bs, lr, net, ws)
            _check_against_naive_sgd(trained, loss, correct, X, y, perm, start, stop, bs, lr, net, f"{t} threads: ")
            results[t] = logits, pred, outs, trained
    one, most = results[min(thread_counts)], results[max(thread_counts)]
    bA1, bL = naive.forward_bounds(Xb, *params)
    naive.assert_within(one[0], most[0], 2 * bL, "logits")
    naive.assert_within(one[1], most[1], 2 * bL, "predict_logits")
    bounds = naive.backward_bounds(*bw_in)
    for name, a, b in zip(("dW1", "db1", "dW2", "db2", "dA1"), one[2], most[2]):
        naive.assert_within(a, b, 2 * bounds[name], name)
    naive.assert_sgd_close(one[3], most[3], (net.W1, net.b1, net.W2, net.b2), 5)


def _float64_call(nb, kernel, arg):
    """Call a numba kernel with every array float32 except ``arg``, which is float64."""
    rng = _rng("f64")
    m, d, h, c = 4, 6, 5, 3
    Xb, yb = _batch(rng, m, d, c)
    W1, b1, W2, b2 = _params(rng, d, h, c)
    a = dict(Xb=Xb, X=Xb, yb=yb, W1=W1, b1=b1, W2=W2, b2=b2, A1=_out((m, h)), logits=_out((m, c)),
             dlogits=_out((m, c)), dW1=_out((d, h)), db1=_out(h), dW2=_out((h, c)), db2=_out(c),
             dA1=_out((m, h)), out=_out((m, c)))
    a[arg] = np.zeros_like(a[arg], np.float64) if arg in ("A1", "dlogits", "dW1", "out") else a[arg].astype(np.float64)
    if kernel == "forward":
        nb.forward(a["Xb"], a["W1"], a["b1"], a["W2"], a["b2"], a["A1"], a["logits"])
    elif kernel == "softmax_xent":
        nb.softmax_xent(a["logits"] if arg == "logits" else np.zeros((m, c), F32), yb, a["dlogits"])
    elif kernel == "backward":
        nb.backward(a["Xb"], np.abs(a["A1"]) if arg == "A1" else np.ones((m, h), F32), a["W2"],
                    a["dlogits"] if arg == "dlogits" else np.zeros((m, c), F32),
                    a["dW1"], a["db1"], a["dW2"], a["db2"], a["dA1"])
    elif kernel == "update":
        nb.update(a["W1"], a["b1"], a["W2"], a["b2"], W1.copy(), b1.copy(), W2.copy(), b2.copy(), 0.1)
    elif kernel == "predict_logits":
        nb.predict_logits(a["X"], a["W1"], a["b1"], a["W2"], a["b2"], a["out"])
    elif kernel == "train_steps":
        ws = nb.make_workspace(m, d, h, c)
        nb.train_steps(a["X"], yb, np.arange(m), 0, m, m, 0.1, a["W1"], a["b1"], a["W2"], a["b2"], ws)


@pytest.mark.parametrize("kernel, arg", [
    ("forward", "Xb"), ("forward", "W1"), ("forward", "A1"),
    ("softmax_xent", "logits"), ("softmax_xent", "dlogits"),
    ("backward", "A1"), ("backward", "dlogits"), ("backward", "dW1"),
    ("update", "W1"), ("predict_logits", "X"), ("predict_logits", "out"),
    ("train_steps", "W1"),
])
def test_numba_rejects_float64_arrays(nb, kernel, arg):
    """sgemm reads raw float32 buffers: a float64 array must be refused, not misread."""
    with pytest.raises(TypeError):
        _float64_call(nb, kernel, arg)


# --- finite differences ------------------------------------------------------------


@pytest.mark.parametrize("impl", ["naive", "numpy_backend_float64"])
def test_backward_gradient_matches_central_differences(np_backend, impl):
    """Perturb every parameter by +-eps and compare the central difference of the mean
    loss with the analytic gradient (as scikit-learn's MLP tests do), in float64."""
    m, d, h, c, eps = 6, 4, 5, 3, 1e-6
    rng = _rng("fd")
    Xb, yb = rng.random((m, d)), rng.integers(0, c, m)
    W1, b1, W2, b2 = (p.astype(np.float64) for p in _params(rng, d, h, c))
    Z1 = Xb @ W1 + b1
    assert np.abs(Z1).min() > 1e3 * eps, "a ReLU kink within eps would spoil the difference"
    A1, logits = naive.forward(Xb, W1, b1, W2, b2)
    if impl == "naive":
        g = naive.backward(Xb, A1, W2, naive.softmax_xent(logits, yb)[2])
        analytic = [g["dW1"], g["db1"], g["dW2"], g["db2"]]
    else:
        A1, logits, dlogits = np.empty((m, h)), np.empty((m, c)), np.empty((m, c))
        np_backend.forward(Xb, W1, b1, W2, b2, A1, logits)
        np_backend.softmax_xent(logits, yb, dlogits)
        analytic = [np.empty((d, h)), np.empty(h), np.empty((h, c)), np.empty(c)]
        np_backend.backward(Xb, A1, W2, dlogits, *analytic, np.empty((m, h)))
    params = [W1, b1, W2, b2]
    for p, grad in zip(params, analytic):
        numeric = np.empty_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            up = naive.mean_loss(Xb, yb, *params)
            p[i] = keep - eps
            down = naive.mean_loss(Xb, yb, *params)
            p[i] = keep
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


# --- the tolerances have teeth ---------------------------------------------------------


def _rejects(check, *args):
    try:
        check(*args)
    except AssertionError:
        return True
    return False


def _mistaken_sgd(X, y, perm, start, stop, bs, lr, params, mistake):
    """float64 SGD with one deliberate mistake."""
    W1, b1, W2, b2 = map(naive._f64, params)
    los = list(range(start, stop, bs))
    if mistake == "last partial batch skipped":
        los = los[:-1]
    for lo in los:
        hi = min(lo + bs, stop)
        idx = perm[lo:hi] if mistake != "one sample taken twice" else np.r_[perm[lo:hi - 1], perm[lo]]
        Xb, yb = naive.gather(X, y, idx)
        A1, logits = naive.forward(Xb, W1, b1, W2, b2)
        dlogits = naive.softmax_xent(logits, yb)[2]
        if mistake == "mean over batch_size, not m":
            dlogits *= len(idx) / bs
        g = naive.backward(Xb, A1, W2, dlogits)
        if mistake == "W2 updated before dZ1 is formed":
            g = naive.backward(Xb, A1, W2 - lr * g["dW2"], dlogits)
        W1 = W1 - lr * g["dW1"]
        b1 = b1 - (0.0 if mistake == "b1 never updated" else lr) * g["db1"]
        W2 = W2 - lr * g["dW2"]
        b2 = b2 - lr * g["db2"]
    return W1, b1, W2, b2


def test_tolerances_reject_plausible_mistakes():
    m, d, h, c = 50, 784, 128, 10
    rng = _rng("teeth")
    Xb, yb = _batch(rng, m, d, c)
    W1, b1, W2, b2 = params = _params(rng, d, h, c)
    f32 = lambda *arrays: [np.asarray(a, F32) for a in arrays]  # noqa: E731

    # forward: the correct answer rounded to float32 passes, each mistake fails
    assert not _rejects(naive.check_forward, Xb, *params, *f32(*naive.forward(Xb, *params)))
    half = h // 2  # where a 2-thread split puts a slice boundary
    A1 = naive.forward(Xb, *params)[0]
    dropped = A1.copy()
    dropped[:, half - 1] = 0.0
    assert (A1[:, half - 1] > 0).any()
    forward_mistakes = {
        "b1 missing": naive.forward(Xb, W1, 0 * b1, W2, b2),
        "b2 missing": (A1, A1 @ W2),
        "no ReLU": (Xb @ W1.astype(float) + b1, (Xb @ W1.astype(float) + b1) @ W2 + b2),
        "hidden unit at the slice boundary dropped": (dropped, dropped @ W2 + b2),
        "second slice's partial logits dropped": (A1, A1[:, :half] @ W2[:half] + b2),
        "rows off by one": naive.forward(np.roll(Xb, 1, axis=0), *params),
    }
    for name, (bad_A1, bad_logits) in forward_mistakes.items():
        assert _rejects(naive.check_forward, Xb, *params, *f32(bad_A1, bad_logits)), name

    # softmax
    logits = naive.forward(Xb, *params)[1].astype(F32)
    loss, correct, dlogits = naive.softmax_xent(logits, yb)
    assert not _rejects(naive.check_softmax_xent, logits, yb, loss, correct, dlogits.astype(F32))
    p = dlogits + np.eye(c)[yb] / m
    softmax_mistakes = {
        "gradient of the sum, not the mean": (loss, correct, dlogits * m),
        "label off by one": naive.softmax_xent(logits, (yb + 1) % c),
        "onehot not subtracted": (loss, correct, p),
        "argmax of dlogits counted": (loss, int(np.sum(dlogits.argmax(1) == yb)), dlogits),
        "loss without max shift in float32 (overflow)": (math.inf, correct, dlogits),
    }
    for name, (bad_loss, bad_correct, bad_dlogits) in softmax_mistakes.items():
        assert _rejects(naive.check_softmax_xent, logits, yb, bad_loss, bad_correct, bad_dlogits.astype(F32)), name

    # backward
    A1 = A1.astype(F32)
    dlogits = dlogits.astype(F32)
    g = naive.backward(Xb, A1, W2, dlogits)
    good = [g["dW1"], g["db1"], g["dW2"], g["db2"], g["dA1"]]
    assert not _rejects(naive.check_backward, Xb, A1, W2, dlogits, *f32(*good))
    unmasked = naive._f64(dlogits) @ naive._f64(W2).T
    ge = naive.backward(Xb, A1 + (A1 == 0), W2, dlogits)  # mask A1 >= 0 instead of A1 > 0
    backward_mistakes = {
        "ReLU mask A1 >= 0": [ge["dW1"], ge["db1"], g["dW2"], g["db2"], ge["dA1"]],
        "db1 unmasked": [g["dW1"], unmasked.sum(0), g["dW2"], g["db2"], g["dA1"]],
        "dW1 divided by m again": [g["dW1"] / m, g["db1"], g["dW2"], g["db2"], g["dA1"]],
        "dW2 from rows off by one": [g["dW1"], g["db1"], naive._f64(np.roll(A1, 1, 0)).T @ dlogits, g["db2"],
                                     g["dA1"]],
        "db2 left at zero": [g["dW1"], g["db1"], g["dW2"], 0 * g["db2"], g["dA1"]],
    }
    for name, bad in backward_mistakes.items():
        assert _rejects(naive.check_backward, Xb, A1, W2, dlogits, *f32(*bad)), name

    # update
    grads = tuple(f32(*good[:4]))
    new = naive.update(*params, *grads, 0.1)
    assert not _rejects(naive.check_update, params, grads, 0.1, f32(*new))
    for name, bad in {"lr applied twice": naive.update(*params, *grads, 0.2),
                      "b2 not updated": (*new[:3], b2)}.items():
        assert _rejects(naive.check_update, params, grads, 0.1, f32(*bad)), name

    # several SGD steps
    X, y, perm, start, stop, bs, lr, net = _train_problem("epoch-partial-last")
    before = (net.W1, net.b1, net.W2, net.b2)
    ref, _, _ = naive.train_steps(X, y, perm, start, stop, bs, lr, *before)
    steps = math.ceil((stop - start) / bs)
    assert not _rejects(naive.assert_sgd_close, f32(*ref), ref, before, steps)
    for mistake in ("last partial batch skipped", "one sample taken twice", "mean over batch_size, not m",
                    "W2 updated before dZ1 is formed", "b1 never updated"):
        bad = _mistaken_sgd(X, y, perm, start, stop, bs, lr, before, mistake)
        assert _rejects(naive.assert_sgd_close, f32(*bad), ref, before, steps), mistake
