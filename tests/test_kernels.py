"""Every kernel of both backends against the float64 references in ``tests/naive.py``,
at every depth, activation and head, then the Numba backend against the NumPy one.

Comparing each backend with float64 (not only with each other) catches a mistake
the two share.  The references take the *same inputs* and compute in float64,
whose own error (~1e-16 relative) is negligible next to float32's, so what
remains is the kernel's rounding.  The numba backend uses ``fastmath`` for FMA
contraction only (no reassociation), which the bounds below cover.

Tolerances (u = 2**-24 ~ 6e-8, float32's unit roundoff; 2**-53 for float64 networks)
---------------------------------------------------------------------------------
* Matmul-like entries are dot products s = sum_{i<k} a_i b_i.  In floating point,
  in any summation order with or without FMA, |s_hat - s| <= k u sum |a_i b_i|
  (Higham, *Accuracy and Stability*, Thm 3.5, with Jeannerod & Rump's 2013 k u
  in place of gamma_k).  That worst case is linear in k; blocked GEMM errors
  behave like a random walk and grow like sqrt(k) u (Higham & Mary, SISC 2019).
  We bound every entry by ``naive.gamma(k, u) * (|A| @ |B|)`` with
  gamma(k) = u min(k, 8 sqrt(k)): the rigorous bound up to k = 64, eight standard
  deviations of the random-walk model above.  A bias adds one term (k + 1).  An
  activation moves an error by at most its slope (1; 1/4 for logistic) and adds a
  few roundings of its own (tanh and exp are accurate to about an ulp): 8u|f(z)|.
  Each layer is checked given the kernel's own input to that layer (layer i from
  its layer i - 1, dW_i from its D_i) so bounds never compound; where that is
  impossible (predict, numba vs numpy) an earlier layer's bound is pushed through
  |W| (``naive.predict_bound``).
* Heads: per sample u(|z_y - z_max| + |loss_i| + 2c + 4) on the softmax loss (8u(c +
  |loss_i| + sum|z|) for the others, whose losses are taken in float64 of the
  float32 outputs) and (2c + 8)u w_i / sum(w) (|output| + |target| + 1) on dZ, both
  doubled (``naive.loss_bounds``).  The number right must match exactly (the same
  float32 outputs).
* One optimizer step: 8u(|p_new| + |rate g| + |p - p_new|): a handful of roundings.
* Several steps (train_steps): no clean a-priori bound (a ReLU whose
  pre-activation is within rounding of 0 may switch on in one run and not the
  other, Adam divides by a tiny sqrt(v)), so an empirical one: TRAIN_REL of the
  largest change float64 training made to that parameter, plus 2u|p| per step;
  measured at most 1.1e-5 of the change (TRAIN_REL is 3e-4), while the mistakes
  below move some parameter by >= 0.06 of its change.

The bounds have teeth: ``test_tolerances_reject_plausible_mistakes`` pushes
deliberately wrong results (a missing bias, a skipped activation, a unit dropped at
a thread-slice boundary, rows off by one, an unmasked derivative, the batch mean
taken twice, a skipped partial batch, a stale weight, ...) through the same
checks and requires every one of them to fail.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import zlib
from itertools import pairwise

import numpy as np
import pytest

from fastnn import _keys, dropout
from fastnn.activations import ACTIVATIONS, Targets
from fastnn.network import Network
from fastnn.optimizers import OPTIMIZERS, make_optimizer

import naive

F32 = np.float32
U32 = naive.unit(F32)

# Layer sizes: no hidden layer; one unit; 7 and 128 and 800 units; widths that do not
# divide by any vector width, three and four weight layers; a tiny network with fewer
# units than threads.
SHAPES = {
    "no-hidden": (40, 3),
    "h1": (784, 1, 10),
    "h7": (784, 7, 10),
    "h128": (784, 128, 10),
    "h800": (784, 800, 10),
    "13-37": (784, 13, 37, 10),
    "deep4": (50, 33, 17, 9, 5),
    "tiny": (3, 2, 2),
}


def _rng(*key) -> np.random.Generator:
    """A generator seeded from a readable key (crc32 of strings: stable across processes)."""
    return np.random.default_rng([k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in key])


def _network(rng, sizes, activation="relu", head="softmax", dtype=F32) -> Network:
    """Glorot-scaled weights and clearly non-zero biases (so a dropped bias shows)."""
    coefs = [rng.standard_normal((a, b)) * math.sqrt(2 / (a + b)) for a, b in pairwise(sizes)]
    intercepts = [0.2 * rng.standard_normal(b) for b in sizes[1:]]
    classes = None if head != "logistic" else (np.arange(2) if sizes[-1] == 1 else np.arange(sizes[-1]))
    return Network(coefs, intercepts, activation, head, classes=classes, dtype=dtype)


def _inputs(rng, m, d, dtype=F32, density=0.3):
    """Rows in [0, 1], about ``density`` of them nonzero (so both numba paths see realistic data)."""
    X = rng.random((m, d)) * (rng.random((m, d)) < density)
    return X.astype(dtype)


def _targets(rng, head, m, c, weighted=False, dtype=F32) -> Targets:
    weights = (rng.random(m) * 2 + 0.25 if weighted else np.ones(m)).astype(dtype)
    if head == "softmax":
        return Targets(rng.integers(0, c, m).astype(np.int64), np.zeros((0, c), dtype), weights)
    values = {
        "logistic": lambda: (rng.random((m, c)) < 0.5).astype(float),
        "identity": lambda: rng.standard_normal((m, c)),
        "exp": lambda: rng.poisson(1.5, (m, c)).astype(float),
    }[head]()
    return Targets(np.zeros(0, np.int64), values.astype(dtype), weights)


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


def _naive_net(net):
    return [np.array(W) for W in net.coefs], [np.array(b) for b in net.intercepts]


# --- permutation ---------------------------------------------------------------


@functools.cache
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


@pytest.mark.parametrize("m", [1, 37, 64])
def test_gather_copies_the_indexed_rows_into_the_first_m_buffer_rows(backend, m):
    rng = _rng("gather", m)
    n, d, rows = 100, 13, 64
    X = rng.random((n, d), dtype=F32)
    idx = rng.permutation(n)[:m]
    out = np.full((rows, d), np.nan, F32)
    backend.gather(X, idx, out)
    np.testing.assert_array_equal(out[:m], naive.gather(X, idx))  # a copy: exact
    assert np.isnan(out[m:]).all(), "wrote past the m rows of the batch"


@pytest.mark.parametrize("bad", [100, 101, -101, 2**40])
def test_gather_rejects_an_index_out_of_range(backend, bad):
    X = _rng("gather-bad").random((100, 5), dtype=F32)
    with pytest.raises(IndexError):
        backend.gather(X, np.array([0, bad, 3]), np.empty((3, 5), F32))


# --- forward -------------------------------------------------------------------


def _forward(backend, net, Xb, rows=None):
    """The kernel's layer outputs for ``Xb`` from a workspace of ``rows`` (>= m) rows."""
    ws = backend.make_workspace(net, rows or len(Xb))
    backend.forward(net, Xb, ws)
    return ws, [a.copy() for a in ws.activations(len(Xb))]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_forward_matches_float64_reference(backend, shape, activation):
    rng = _rng("forward", *shape, activation)
    m = 37 if shape[0] > 3 else 5
    net = _network(rng, shape, activation)
    Xb = _inputs(rng, m, shape[0])
    _, A = _forward(backend, net, Xb, rows=m + 7)  # buffers longer than the batch, sliced [:m]
    assert len(A) == len(shape) - 1
    naive.check_forward(Xb, *_naive_net(net), activation, A, U32)


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_forward_reads_any_layout(backend, layout):
    rng = _rng("forward-layout", layout)
    net = _network(rng, SHAPES["13-37"], "tanh")
    Xb = _inputs(rng, 20, 784)
    _, A = _forward(backend, net, _layout(Xb, layout))
    naive.check_forward(Xb, *_naive_net(net), "tanh", A, U32)


def test_forward_rejects_a_batch_whose_width_does_not_match_the_first_layer(backend):
    net = _network(_rng("width"), (6, 4, 2))
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        backend.forward(net, np.zeros((4, 5), F32), backend.make_workspace(net, 4))


# --- heads ----------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "head, c", [("softmax", 10), ("softmax", 2), ("logistic", 1), ("logistic", 5), ("identity", 3), ("exp", 2)]
)
@pytest.mark.parametrize("m", [1, 37])
def test_loss_matches_float64_reference(backend, head, c, m, weighted):
    rng = _rng("loss", head, c, m, weighted)
    Z = (rng.standard_normal((m, c)) * (3 if head != "exp" else 1)).astype(F32)
    targets = _targets(rng, head, m, c, weighted)
    dZ = np.full((m + 3, c), np.nan, F32)[:m]
    loss, right = backend.loss(head, Z, targets, dZ)
    assert type(loss) is float and type(right) is int
    naive.check_loss(
        head,
        Z,
        targets.labels if head == "softmax" else None,
        targets.values if head != "softmax" else None,
        targets.weights,
        loss,
        right,
        dZ,
        U32,
    )


@pytest.mark.parametrize("case", ["one huge logit", "huge negative", "all equal", "span beyond float32"])
def test_softmax_loss_is_finite_and_right_for_extreme_logits(backend, case):
    Z = {
        "one huge logit": [[3e38, 0.0, -1.0]],
        "huge negative": [[-3e38, 0.0, 1.0]],
        "all equal": [[7.0, 7.0, 7.0]],
        "span beyond float32": [[3e38, -3e38, 0.0]],
    }[case]
    Z = np.array(Z, F32)
    targets = Targets(np.array([1]), np.zeros((0, 3), F32), np.ones(1, F32))
    dZ = np.empty_like(Z)
    loss, right = backend.loss("softmax", Z, targets, dZ)
    ref, ref_right, ref_dZ = naive.loss("softmax", Z, targets.labels, None, targets.weights)
    assert math.isfinite(loss) and loss == pytest.approx(ref, rel=1e-6)
    assert right == ref_right
    np.testing.assert_allclose(dZ, ref_dZ, atol=1e-6)


def test_loss_rejects_labels_beyond_the_outputs(backend):
    Z = np.zeros((4, 3), F32)
    targets = Targets(np.array([0, 1, 2, 3]), np.zeros((0, 3), F32), np.ones(4, F32))
    with pytest.raises(ValueError, match="labels must lie in"):
        backend.loss("softmax", Z, targets, np.empty_like(Z))


# --- backward -----------------------------------------------------------------------


def _backward(backend, net, Xb, dZ):
    """Forward, then the given output gradient, then backward: (A, D, weight grads, bias grads)."""
    ws, A = _forward(backend, net, Xb)
    m = len(Xb)
    ws.deltas(m)[-1][...] = dZ
    backend.backward(net, Xb, ws)
    return (
        A,
        [d.copy() for d in ws.deltas(m)],
        [g.copy() for g in ws.grads.coefs],
        [g.copy() for g in ws.grads.intercepts],
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_float64_reference(backend, shape, activation):
    rng = _rng("backward", *shape, activation)
    m = 37 if shape[0] > 3 else 5
    net = _network(rng, shape, activation)
    Xb = _inputs(rng, m, shape[0])
    targets = _targets(rng, "softmax", m, shape[-1])
    A_ref = naive.forward(Xb, *_naive_net(net), activation)
    dZ = naive.loss("softmax", A_ref[-1], targets.labels, None, targets.weights)[2].astype(F32)
    A, D, gW, gb = _backward(backend, net, Xb, dZ)
    np.testing.assert_array_equal(D[-1], dZ)
    naive.check_backward(Xb, A, *_naive_net(net)[:1], activation, D, gW, gb, U32)


# --- one optimizer step ------------------------------------------------------------------


@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_update_follows_the_rule_for_several_steps(backend, kind, decay):
    rng = _rng("update", kind, decay)
    net = _network(rng, (9, 5, 3))
    opt = make_optimizer(kind, net.layout, momentum=0.8, beta2=0.99)
    grads = net.params.like()
    state, hyper = {}, {"momentum": 0.8, "beta2": 0.99, "eps": 1e-8}
    for step in range(4):
        grads.flat[...] = rng.standard_normal(grads.flat.shape)
        before = [np.array(p) for pair in net.params.blocks() for p in pair]
        rate = 0.05 if kind != "adam" else naive.adam_rate(0.01, step + 1, hyper)
        backend.update(net.params, grads, opt, rate, decay)
        opt.advance(1)
        after = [p for pair in net.params.blocks() for p in pair]
        g_all = [g for pair in grads.blocks() for g in pair]
        for i, (p0, p1, g) in enumerate(zip(before, after, g_all)):
            ref = naive.rule_step(kind, p0, g, state.setdefault(i, {}), F32(rate), decay if i % 2 == 0 else 0.0, hyper)
            naive.assert_within(p1, ref, naive.step_bound(p0, ref, rate, g, U32), f"step {step} array {i}")
            p1[...] = ref  # the next step starts from float64's answer, so bounds never compound


# --- predict -------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "logistic"])
@pytest.mark.parametrize("n", [1, 300, 1000])
@pytest.mark.parametrize("shape", [SHAPES["h128"], SHAPES["13-37"], SHAPES["no-hidden"]], ids=str)
def test_predict_matches_float64_reference(backend, shape, n, activation):
    rng = _rng("predict", *shape, n, activation)
    net = _network(rng, shape, activation)
    X = _inputs(rng, n, shape[0])
    out = np.full((n, shape[-1]), np.nan, F32)
    backend.predict(net, X, out)
    naive.assert_within(
        out,
        naive.predict(X, *_naive_net(net), activation),
        naive.predict_bound(X, *_naive_net(net), activation, U32),
        "outputs",
    )


def test_predict_writes_into_a_non_contiguous_output(backend):
    rng = _rng("predict-strided")
    net = _network(rng, SHAPES["13-37"])
    X = _inputs(rng, 50, 784)
    out = _layout(np.full((50, 10), np.nan, F32), "strided")
    backend.predict(net, X, out)
    naive.assert_within(
        out,
        naive.predict(X, *_naive_net(net), "relu"),
        naive.predict_bound(X, *_naive_net(net), "relu", U32),
        "outputs",
    )


# --- whole chunks of training ---------------------------------------------------------

# sizes, activation, head, optimizer, (n, batch, start, stop), lr, weighted, weight decay, l2
TRAIN_CASES = {
    "h128-sgd-partial-last": ((784, 128, 10), "relu", "softmax", "sgd", (150, 32, 0, 150), 0.1, False, 0.0, 0.0),
    # a last batch of one row: fewer rows than threads, so the forward pass runs fewer parts
    "h16-sgd-one-row-last": ((784, 16, 10), "relu", "softmax", "sgd", (33, 32, 0, 33), 0.1, False, 0.0, 0.0),
    "h800-nesterov-mid-chunk": (
        (784, 800, 10),
        "relu",
        "softmax",
        "nesterov",
        (150, 32, 40, 113),
        0.05,
        False,
        1e-3,
        0.0,
    ),
    "deep4-tanh-adam-weighted": (
        (50, 33, 17, 9, 5),
        "tanh",
        "softmax",
        "adam",
        (120, 16, 0, 120),
        0.01,
        True,
        0.0,
        1e-2,
    ),
    "13-37-logistic-momentum": (
        (784, 13, 37, 10),
        "logistic",
        "softmax",
        "momentum",
        (90, 32, 0, 90),
        0.3,
        False,
        0.0,
        0.0,
    ),
    "binary-logistic-head": ((30, 9, 1), "relu", "logistic", "sgd", (80, 16, 0, 80), 0.2, True, 0.0, 1e-3),
    "multilabel": ((30, 12, 8, 4), "tanh", "logistic", "adam", (80, 20, 0, 80), 0.01, False, 0.0, 0.0),
    "regression-identity": ((20, 11, 3), "relu", "identity", "momentum", (60, 16, 0, 60), 0.02, True, 0.0, 1e-2),
    "poisson-exp": ((20, 7, 2), "tanh", "exp", "sgd", (60, 16, 0, 60), 0.02, False, 0.0, 0.0),
    "no-hidden-batch-larger-than-chunk": ((20, 3), "relu", "softmax", "sgd", (37, 64, 0, 37), 0.5, False, 0.0, 0.0),
    "batch1-h1": ((5, 1, 2), "identity", "softmax", "nesterov", (20, 1, 0, 20), 0.1, False, 0.0, 0.0),
}


def _train_problem(case, dtype=F32):
    sizes, activation, head, kind, (n, bs, start, stop), lr, weighted, wd, l2 = TRAIN_CASES[case]
    rng = _rng("train", case)
    net = _network(rng, sizes, activation, head, dtype)
    X = _inputs(rng, n, sizes[0], dtype, density=0.25)
    targets = _targets(rng, head, n, sizes[-1], weighted, dtype)
    perm = _naive_permutation(n, 3, 1)
    steps = math.ceil((stop - start) / bs)
    lrs = lr * (1 + 0.1 * np.arange(steps))  # a rate per step, as a schedule gives
    return net, X, targets, perm, start, stop, bs, lrs, kind, wd, l2


def _run_train_steps(backend, problem, ws=None, drop=None):
    net, X, targets, perm, start, stop, bs, lrs, kind, wd, l2 = problem
    net = net.copy()
    opt = make_optimizer(kind, net.layout, momentum=0.9, beta2=0.999, weight_decay=wd, l2=l2)
    if ws is None:
        ws = backend.make_workspace(net, min(bs, len(X)))
    if drop is None:
        loss, right = backend.train_steps(net, X, targets, perm, start, stop, bs, lrs, opt, ws)
    else:
        loss, right = backend.train_steps(net, X, targets, perm, start, stop, bs, lrs, opt, ws, drop)
    assert type(loss) is float and type(right) is int
    assert opt.t == len(lrs)
    return net, loss, right


def _check_against_naive_training(net, loss, right, problem, u=U32, what="", keep=None, p=0.0):
    before, X, targets, perm, start, stop, bs, lrs, kind, wd, l2 = problem
    coefs, intercepts = _naive_net(before)
    ref_W, ref_b, ref_loss, ref_right = naive.train_steps(
        X,
        targets.labels,
        targets.values,
        targets.weights,
        perm,
        start,
        stop,
        bs,
        lrs,
        coefs,
        intercepts,
        before.activation,
        before.head,
        kind,
        {"momentum": 0.9, "beta2": 0.999, "eps": 1e-8},
        wd,
        l2,
        keep=keep,
        p=p,
    )
    naive.assert_train_close(net.coefs, net.intercepts, ref_W, ref_b, coefs, intercepts, len(lrs), u, what)
    assert loss == pytest.approx(ref_loss, rel=1e-5 if u == U32 else 1e-12)
    # Loss and right are measured before each update, on outputs within rounding of
    # float64's, so the count matches unless an output sits within ~1e-6 of a tie.
    assert abs(right - ref_right) <= 1


@pytest.mark.parametrize("case", TRAIN_CASES, ids=TRAIN_CASES)
def test_train_steps_matches_float64_training(backend, case):
    problem = _train_problem(case)
    _check_against_naive_training(*_run_train_steps(backend, problem), problem)


def test_train_steps_reads_fortran_order_inputs(backend):
    problem = _train_problem("13-37-logistic-momentum")
    fortran = (problem[0], np.asfortranarray(problem[1])) + problem[2:]
    _check_against_naive_training(*_run_train_steps(backend, fortran), problem)


def test_train_steps_refuses_a_workspace_made_for_another_network(backend):
    net, X, targets, perm, start, stop, bs, lrs, kind, wd, l2 = _train_problem("h128-sgd-partial-last")
    other = _network(_rng("other"), (784, 64, 10))
    with pytest.raises(ValueError, match="workspace was made for"):
        backend.train_steps(
            net,
            X,
            targets,
            perm,
            start,
            stop,
            bs,
            lrs,
            make_optimizer(kind, net.layout),
            backend.make_workspace(other, bs),
        )


# --- float64 ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["deep4-tanh-adam-weighted", "regression-identity", "h128-sgd-partial-last"])
def test_float64_networks_train_in_float64(backend, case):
    problem = _train_problem(case, np.float64)
    net, loss, right = _run_train_steps(backend, problem)
    assert net.dtype == np.float64
    _check_against_naive_training(net, loss, right, problem, naive.unit(np.float64))


@pytest.mark.parametrize("kernel", ["forward", "predict", "train_steps"])
def test_kernels_refuse_inputs_of_another_dtype_than_the_network(backend, kernel):
    net, X, targets, perm, start, stop, bs, lrs, kind, wd, l2 = _train_problem("h128-sgd-partial-last")
    X64 = X.astype(np.float64)
    with pytest.raises(TypeError, match="float64"):
        if kernel == "forward":
            backend.forward(net, X64[:8], backend.make_workspace(net, 8))
        elif kernel == "predict":
            backend.predict(net, X64, np.empty((len(X), 10), F32))
        else:
            backend.train_steps(
                net,
                X64,
                targets,
                perm,
                start,
                stop,
                bs,
                lrs,
                make_optimizer(kind, net.layout),
                backend.make_workspace(net, bs),
            )


# --- numba against numpy, thread counts -------------------------------------------------


def test_numba_matches_numpy_kernel_by_kernel(nb, np_backend):
    """Both float32, each within its bound of float64, so within twice the bound of each other."""
    rng = _rng("pairwise")
    shape = SHAPES["13-37"]
    net = _network(rng, shape, "tanh")
    Xb = _inputs(rng, 37, shape[0])
    coefs, intercepts = _naive_net(net)
    outs = {B.NAME: _forward(B, net, Xb)[1][-1] for B in (nb, np_backend)}
    naive.assert_within(
        outs["numba"], outs["numpy"], 2 * naive.predict_bound(Xb, coefs, intercepts, "tanh", U32), "outputs"
    )
    for case in ("h128-sgd-partial-last", "deep4-tanh-adam-weighted", "regression-identity"):
        problem = _train_problem(case)
        a, loss_a, right_a = _run_train_steps(nb, problem)
        b, loss_b, right_b = _run_train_steps(np_backend, problem)
        naive.assert_train_close(
            a.coefs,
            a.intercepts,
            b.coefs,
            b.intercepts,
            problem[0].coefs,
            problem[0].intercepts,
            len(problem[7]),
            U32,
            f"{case} ",
        )
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and abs(right_a - right_b) <= 1


def test_numba_results_do_not_depend_on_the_thread_count(nb, numba_threads, thread_counts):
    """Units are split across threads: each count must give a correct answer, and a
    workspace made under one count must still work under another."""
    problem = _train_problem("13-37-logistic-momentum")
    net, X = problem[0], problem[1]
    with numba_threads(max(thread_counts)):
        ws = nb.make_workspace(net, problem[6])
    results = {}
    for t in thread_counts + thread_counts[::-1]:
        with numba_threads(t):
            _, A = _forward(nb, net, X[:29])
            naive.check_forward(X[:29], *_naive_net(net), net.activation, A, U32)
            trained, loss, right = _run_train_steps(nb, problem, ws)
            _check_against_naive_training(trained, loss, right, problem, what=f"{t} threads: ")
            results[t] = trained
    one, most = results[min(thread_counts)], results[max(thread_counts)]
    naive.assert_train_close(
        one.coefs, one.intercepts, most.coefs, most.intercepts, net.coefs, net.intercepts, len(problem[7]), U32
    )


_MANY_THREADS = """
import numpy as np, numba, json, sys
sys.path.insert(0, {tests!r})
import test_kernels as tk
from fastnn.backends import get_backend
nb = get_backend("numba")
out = {{}}
for case in ("13-37-logistic-momentum", "h128-sgd-partial-last", "deep4-tanh-adam-weighted"):
    problem = tk._train_problem(case)
    res = []
    for t in (1, 3, 8):
        numba.set_num_threads(t)
        net, loss, right = tk._run_train_steps(nb, problem)
        tk._check_against_naive_training(net, loss, right, problem, what=f"{{t}} threads: ")
        res.append(net.params.flat.copy())
    out[case] = [float(np.abs(r - res[0]).max()) for r in res]
print(json.dumps(out))
"""


def _with_eight_threads(script: str) -> dict:
    """Run ``script`` (formatted with this folder as ``tests``) in a fresh process with numba
    set to 8 threads on this 2-core machine; return the JSON its last line prints."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_NUM")}
    env["NUMBA_NUM_THREADS"] = "8"
    proc = subprocess.run(
        [sys.executable, "-c", script.format(tests=os.path.dirname(__file__))],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_numba_with_more_threads_than_cores_trains_the_same_network():
    """Users have 8-64 cores; this machine has 2.  Eight threads on two cores split every
    layer into more slices than there are units in some (13, 9, 5 units): each must
    still train correctly, and within rounding of one thread."""
    diffs = _with_eight_threads(_MANY_THREADS)
    assert set(diffs) == {"13-37-logistic-momentum", "h128-sgd-partial-last", "deep4-tanh-adam-weighted"}
    for case, d in diffs.items():
        assert d[0] == 0.0 and max(d) < 1e-3, (case, d)


# --- finite differences ------------------------------------------------------------


def _central_differences(p, objective, eps):
    """d objective / d p by central differences, perturbing ``p`` in place one entry at a time."""
    numeric = np.empty_like(p)
    for i in np.ndindex(p.shape):
        keep = p[i]
        p[i] = keep + eps
        up = objective()
        p[i] = keep - eps
        down = objective()
        p[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    return numeric


@pytest.mark.parametrize("head, c", [("softmax", 3), ("logistic", 1), ("logistic", 3), ("identity", 2), ("exp", 2)])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu", "identity"])
def test_reference_gradient_matches_central_differences(np_backend, activation, head, c):
    """Perturb every parameter by +-eps and compare the central difference of the loss
    (weighted, with an L2 term) with the reference backend's analytic gradient, in
    float64 (as scikit-learn's MLP tests do), through two hidden layers."""
    sizes, m, eps, l2 = (4, 5, 3, c), 6, 1e-6, 0.3
    rng = _rng("fd", activation, head, c)
    net = _network(rng, sizes, activation, head, np.float64)
    Xb = rng.random((m, sizes[0]))
    targets = _targets(rng, head, m, c, weighted=True, dtype=np.float64)
    coefs, intercepts = _naive_net(net)
    if activation == "relu":
        pre = [Xb @ coefs[0] + intercepts[0]]
        pre.append(np.maximum(pre[0], 0) @ coefs[1] + intercepts[1])
        assert min(np.abs(z).min() for z in pre) > 1e3 * eps, "a ReLU kink within eps would spoil the difference"
    ws = np_backend.make_workspace(net, m)
    np_backend.forward(net, Xb, ws)
    A = ws.activations(m)
    np_backend.loss(head, A[-1], targets, ws.deltas(m)[-1])
    np_backend.backward(net, Xb, ws)
    sw = targets.weights.sum()
    analytic = [g + (l2 / sw) * W for g, W in zip(ws.grads.coefs, net.coefs)] + list(ws.grads.intercepts)

    def objective():
        return naive.mean_loss(
            Xb, targets.labels, targets.values, targets.weights, coefs, intercepts, activation, head, l2
        )

    for p, grad in zip(coefs + intercepts, analytic):
        numeric = _central_differences(p, objective, eps)
        # The reference's gradient is of the mean loss times m / m: the kernels' loss is
        # a sum over the batch, their gradient the gradient of the mean.
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


# --- dropout ---------------------------------------------------------------------------

DROP_P, DROP_SEED, DROP_EPOCH = 0.3, 11, 2
# Depths 1 to 3, every activation (relu, logistic, tanh, identity), batches of one row,
# a weighted L2 run and a multi-label head; the backend fixture adds numba's two paths.
DROPOUT_CASES = [
    "h128-sgd-partial-last",
    "13-37-logistic-momentum",
    "deep4-tanh-adam-weighted",
    "batch1-h1",
    "multilabel",
]


@functools.cache
def _naive_keep(n, n_units, p=DROP_P, seed=DROP_SEED, epoch=DROP_EPOCH):
    """Every training row's keep mask, from the definition (tests/naive.py)."""
    return naive.dropout_keep(seed, epoch, range(n), n_units, p)


def _hidden(net) -> tuple:
    return net.layout.sizes[1:-1]


@pytest.mark.parametrize(
    "seed, epoch", [(0, 0), (DROP_SEED, DROP_EPOCH), (2**63 - 1, 10**6)], ids=["zero", "run", "largest"]
)
def test_dropout_masks_follow_their_definition(seed, epoch):
    rows = np.array([0, 1, 7, 59999, 2**40])
    hidden = (13, 1, 37)
    assert dropout.DROPOUT_SALT == naive.DROPOUT_SALT
    for p in (0.05, 0.5, 0.95):
        drop = dropout.for_epoch(p, seed, epoch)
        got = np.concatenate(dropout.keep_masks(drop, rows, hidden), axis=1)
        np.testing.assert_array_equal(got, naive.dropout_keep(seed, epoch, rows, sum(hidden), p))
    assert dropout.for_epoch(0.0, seed, epoch) is None  # no dropout: nothing drawn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_about_1_minus_p_of_the_units_of_every_unit_and_row(p):
    n, hidden = 4000, (100, 50)
    keep = np.concatenate(dropout.keep_masks(dropout.for_epoch(p, 3, 1), np.arange(n), hidden), axis=1)
    sd = math.sqrt(p * (1 - p))
    assert abs(keep.mean() - (1 - p)) < 5 * sd / math.sqrt(keep.size)
    assert np.abs(keep.mean(axis=0) - (1 - p)).max() < 5 * sd / math.sqrt(n)  # each unit over the rows
    assert np.abs(keep.mean(axis=1) - (1 - p)).max() < 5 * sd / math.sqrt(sum(hidden))  # each row over the units
    # another epoch draws afresh: two masks agree on p**2 + (1 - p)**2 of the units
    other = np.concatenate(dropout.keep_masks(dropout.for_epoch(p, 3, 2), np.arange(n), hidden), axis=1)
    agree = p * p + (1 - p) ** 2
    assert abs((keep == other).mean() - agree) < 5 * math.sqrt(agree * (1 - agree) / keep.size)


def test_dropout_draws_are_independent_of_the_augmentation_draws():
    """The same (seed, epoch, row, draw index) under the two salts: uncorrelated streams."""
    rows, j = np.arange(3000, dtype=np.uint64), np.arange(200, dtype=np.uint64)
    streams = []
    for salt in (_keys._AUGMENT_SALT, dropout.DROPOUT_SALT):
        keys = _keys.sample_key(np.uint64(_keys.epoch_key(4, 1, salt)), rows)
        streams.append(_keys.uniform(keys[:, None], j[None, :]).ravel())
    assert abs(np.corrcoef(*streams)[0, 1]) < 5 / math.sqrt(streams[0].size)
    assert _keys.epoch_key(4, 1) == _keys.epoch_key(4, 1, _keys._AUGMENT_SALT)  # the augmentation's key unchanged


@pytest.mark.parametrize("dtype", [F32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", DROPOUT_CASES)
def test_train_steps_with_dropout_matches_float64_training(backend, case, dtype):
    problem = _train_problem(case, dtype)
    net, X = problem[0], problem[1]
    drop = dropout.for_epoch(DROP_P, DROP_SEED, DROP_EPOCH)
    trained, loss, right = _run_train_steps(backend, problem, drop=drop)
    keep = _naive_keep(len(X), sum(_hidden(net)))
    assert 0.5 < keep.mean() < 0.9  # the masks drop units
    _check_against_naive_training(trained, loss, right, problem, naive.unit(dtype), keep=keep, p=DROP_P)


@pytest.mark.parametrize("dtype", [F32, np.float64], ids=["float32", "float64"])
def test_numba_matches_numpy_over_training_steps_with_dropout(nb, np_backend, dtype):
    drop = dropout.for_epoch(0.5, 1, 0)
    u = naive.unit(dtype)
    for case in ("h800-nesterov-mid-chunk", "13-37-logistic-momentum", "deep4-tanh-adam-weighted"):
        problem = _train_problem(case, dtype)
        a, loss_a, right_a = _run_train_steps(nb, problem, drop=drop)
        b, loss_b, right_b = _run_train_steps(np_backend, problem, drop=drop)
        before = problem[0]
        steps = len(problem[7])
        naive.assert_train_close(
            a.coefs, a.intercepts, b.coefs, b.intercepts, before.coefs, before.intercepts, steps, u, f"{case} "
        )
        assert loss_a == pytest.approx(loss_b, rel=1e-5 if dtype == F32 else 1e-12) and abs(right_a - right_b) <= 1


def test_dropout_tolerances_reject_a_missing_or_misplaced_mask(np_backend):
    """The checks above fail for training without the masks, with the masks of the rows'
    places in the batch instead of their rows, and without the 1 / (1 - p) scale."""
    problem = _train_problem("13-37-logistic-momentum")
    net, X, perm = problem[0], problem[1], problem[3]
    trained, loss, right = _run_train_steps(np_backend, problem, drop=dropout.for_epoch(DROP_P, DROP_SEED, DROP_EPOCH))
    keep = _naive_keep(len(X), sum(_hidden(net)))
    _check_against_naive_training(trained, loss, right, problem, keep=keep, p=DROP_P)
    by_place = np.empty_like(keep)
    by_place[perm] = keep[np.arange(len(X)) % problem[6]]  # row perm[lo + i] given row i's mask
    mistakes = {
        "no mask": dict(keep=None, p=0.0),
        "masks by place in the batch": dict(keep=by_place, p=DROP_P),
        "kept outputs not scaled": dict(keep=keep, p=0.0),
    }
    for name, change in mistakes.items():
        assert _rejects(_check_against_naive_training, trained, loss, right, problem, U32, "", *change.values()), name


def _masks_in(ws, m, hidden) -> np.ndarray:
    """Which hidden units numba kept in the last batch (``m`` rows): those whose output it did
    not zero (a tanh or logistic output is never exactly 0 otherwise)."""
    b = ws.buffers
    return np.concatenate([b.A[o : o + m * h].reshape(m, h) != 0 for o, h in zip(b.offs, hidden)], axis=1)


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_numba_dropout_mask_of_a_row_does_not_depend_on_its_batch(nb, activation):
    """Batch by batch (learning rate 0), the units numba drops are the definition's for the
    batch's rows, whatever the batch size and the order: keyed on rows, not places.  What the
    derivative reads in their place is 0 where it must be (tanh: 1, whose 1 - a**2 is 0;
    identity: the mask itself)."""
    rng = _rng("dropout-batches")
    sizes, n = (30, 9, 5, 4), 40
    net = _network(rng, sizes, activation)
    X = _inputs(rng, n, sizes[0])
    targets = _targets(rng, "softmax", n, sizes[-1])
    hidden = sizes[1:-1]
    drop = dropout.for_epoch(0.4, 5, 3)
    expected = _naive_keep(n, sum(hidden), 0.4, 5, 3)
    for bs, perm in ((40, np.arange(n)), (7, np.arange(n)[::-1].copy()), (1, _naive_permutation(n, 1, 1))):
        ws = nb.make_workspace(net, bs)
        opt = make_optimizer("sgd", net.layout)
        for lo in range(0, n, bs):
            hi = min(lo + bs, n)
            nb.train_steps(net, X, targets, perm, lo, hi, bs, np.zeros(1), opt, ws, drop)
            keep = expected[perm[lo:hi]]
            np.testing.assert_array_equal(_masks_in(ws, hi - lo, hidden), keep, f"batch {bs}")
            b, m = ws.buffers, hi - lo
            source = np.concatenate([b.K[o : o + m * h].reshape(m, h) for o, h in zip(b.offs, hidden)], axis=1)
            dead = 1.0 if activation == "tanh" else 0.0
            assert (source[~keep] == dead).all() and (activation == "tanh" or (source[keep] == 1.0).all())


_DROPOUT_THREADS = """
import numpy as np, numba, json, sys
sys.path.insert(0, {tests!r})
import test_kernels as tk
from fastnn import dropout
from fastnn.backends import get_backend
nb = get_backend("numba")
drop = dropout.for_epoch(tk.DROP_P, tk.DROP_SEED, tk.DROP_EPOCH)
out = {{}}
for case in ("13-37-logistic-momentum", "deep4-tanh-adam-weighted"):
    problem = tk._train_problem(case)
    net, X, perm, stop, bs = problem[0], problem[1], problem[3], problem[5], problem[6]
    keep = tk._naive_keep(len(X), sum(tk._hidden(net)))
    last = perm[(stop - 1) // bs * bs : stop]  # the last batch's rows
    res = []
    for t in (1, 3, 8):
        numba.set_num_threads(t)
        ws = nb.make_workspace(net, bs)
        trained, loss, right = tk._run_train_steps(nb, problem, ws, drop)
        tk._check_against_naive_training(trained, loss, right, problem, what=f"{{t}} threads: ", keep=keep, p=tk.DROP_P)
        assert (tk._masks_in(ws, len(last), tk._hidden(net)) == keep[last]).all(), t
        res.append(trained.params.flat.copy())
    out[case] = [float(np.abs(r - res[0]).max()) for r in res]
print(json.dumps(out))
"""


def test_numba_dropout_does_not_depend_on_the_thread_count():
    """1, 3 and 8 threads on two cores (more threads than cores, and than some layers'
    units): the same masks (those of the definition) and the same network within rounding."""
    diffs = _with_eight_threads(_DROPOUT_THREADS)
    assert set(diffs) == {"13-37-logistic-momentum", "deep4-tanh-adam-weighted"}
    for case, d in diffs.items():
        assert d[0] == 0.0 and max(d) < 1e-3, (case, d)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_gradient_with_a_fixed_dropout_mask_matches_central_differences(np_backend, activation):
    """As the test above, through two hidden layers with dropout: the loss with a fixed mask
    is a smooth function of the parameters, and the reference's gradient must be its
    gradient (the derivative taken through the unmasked activations)."""
    sizes, m, eps, p = (4, 6, 5, 3), 8, 1e-6, 0.4
    rng = _rng("fd-dropout", activation)
    net = _network(rng, sizes, activation, "softmax", np.float64)
    Xb = rng.random((m, sizes[0]))
    targets = _targets(rng, "softmax", m, sizes[-1], weighted=True, dtype=np.float64)
    rows = np.arange(100, 100 + m)  # training rows 100..107 of some epoch
    hidden = sizes[1:-1]
    K = dropout.multipliers(dropout.for_epoch(p, 1, 0), rows, hidden, np.float64)
    assert all(0 < np.count_nonzero(k) < k.size for k in K), "the mask must drop some units and keep others"
    coefs, intercepts = _naive_net(net)
    mult = naive.dropout_multipliers(naive.dropout_keep(1, 0, rows, sum(hidden), p), hidden, p)
    if activation == "relu":
        pre, a = [], Xb
        for W, b, k in zip(coefs, intercepts, mult + [None]):
            pre.append(a @ W + b)
            a = np.maximum(pre[-1], 0) * k if k is not None else None
        assert min(np.abs(z).min() for z in pre) > 1e3 * eps, "a ReLU kink within eps would spoil the difference"
    ws = np_backend.make_workspace(net, m)
    A, D, H = ws.activations(m), ws.deltas(m), ws.unmasked(m)
    np_backend._forward(net, Xb, A, K, H)
    np_backend._loss("softmax", A[-1], targets, D[-1])
    np_backend._backward(net, Xb, A, D, ws.grads, K, H)
    analytic = list(ws.grads.coefs) + list(ws.grads.intercepts)

    def objective():
        return naive.mean_loss(
            Xb, targets.labels, targets.values, targets.weights, coefs, intercepts, activation, "softmax", mult=mult
        )

    for p_, grad in zip(coefs + intercepts, analytic):
        numeric = _central_differences(p_, objective, eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_zero_dropout_computes_no_mask_and_trains_bit_for_bit_as_without_it(backend):
    """Rate 0 is no dropout at all: no mask is made and every weight is the same bits as a
    call without the argument (compared with the code before dropout existed, for 48 runs
    of both backends, when dropout was added)."""
    assert dropout.for_epoch(0.0, DROP_SEED, DROP_EPOCH) is None  # what the training loop passes
    rate_zero = dropout.Dropout(0.0, _keys.epoch_key(DROP_SEED, DROP_EPOCH, dropout.DROPOUT_SALT))
    for case in ("13-37-logistic-momentum", "deep4-tanh-adam-weighted"):
        problem = _train_problem(case)
        net, bs = problem[0], problem[6]
        ws = backend.make_workspace(net, bs)
        plain, loss, right = _run_train_steps(backend, problem, ws)
        zero, loss0, right0 = _run_train_steps(backend, problem, ws, rate_zero)
        np.testing.assert_array_equal(zero.params.flat, plain.params.flat)
        assert (loss0, right0) == (loss, right)
        if backend.NAME == "numba":
            assert ws.buffers.K.shape == (16,)  # the stand-in: no mask was ever made
        else:
            assert ws.H is None


# --- the tolerances have teeth ---------------------------------------------------------


def _rejects(check, *args):
    try:
        check(*args)
    except AssertionError:
        return True
    return False


def test_tolerances_reject_plausible_mistakes():
    rng = _rng("teeth")
    sizes = (784, 128, 64, 10)
    net = _network(rng, sizes, "tanh")
    coefs, intercepts = _naive_net(net)
    m = 50
    Xb = _inputs(rng, m, sizes[0])
    f32 = lambda arrays: [np.asarray(a, F32) for a in arrays]  # noqa: E731
    A = naive.forward(Xb, coefs, intercepts, "tanh")

    # forward: the correct answer rounded to float32 passes, each mistake fails
    assert not _rejects(naive.check_forward, Xb, coefs, intercepts, "tanh", f32(A), U32)
    half = sizes[2] // 2  # where a 2-thread split puts a slice boundary in layer 1
    dropped = [a.copy() for a in A]
    dropped[1][:, half - 1] = 0.0
    no_bias = naive.forward(Xb, coefs, [intercepts[0], 0 * intercepts[1], intercepts[2]], "tanh")
    layer1_raw = A[0] @ coefs[1] + intercepts[1]
    skipped = [A[0], layer1_raw, layer1_raw @ coefs[2] + intercepts[2]]
    half_out = [A[0], A[1], A[1][:, :half] @ coefs[2][:half] + intercepts[2]]
    forward_mistakes = {
        "layer 1's bias missing": no_bias,
        "layer 1's activation skipped": skipped,
        "unit at the slice boundary dropped": dropped,
        "second slice's partial outputs dropped": half_out,
        "rows off by one": naive.forward(np.roll(Xb, 1, axis=0), coefs, intercepts, "tanh"),
        "relu instead of tanh": naive.forward(Xb, coefs, intercepts, "relu"),
    }
    for name, bad in forward_mistakes.items():
        assert _rejects(naive.check_forward, Xb, coefs, intercepts, "tanh", f32(bad), U32), name

    # heads
    Z = A[-1].astype(F32)
    targets = _targets(rng, "softmax", m, 10, weighted=True)
    loss, right, dZ = naive.loss("softmax", Z, targets.labels, None, targets.weights)
    good = (loss, right, dZ.astype(F32))

    def check(loss_, right_, dZ_):
        return naive.check_loss("softmax", Z, targets.labels, None, targets.weights, loss_, right_, dZ_, U32)

    assert not _rejects(check, *good)
    unweighted = naive.loss("softmax", Z, targets.labels, None, np.ones(m, F32))
    loss_mistakes = {
        "gradient of the sum, not the mean": (loss, right, dZ * m),
        "label off by one": naive.loss("softmax", Z, (targets.labels + 1) % 10, None, targets.weights),
        "sample weights ignored": unweighted,
        "onehot not subtracted": (
            loss,
            right,
            dZ + np.eye(10)[targets.labels] * (targets.weights / targets.weights.sum())[:, None],
        ),
        "loss overflowed": (math.inf, right, dZ),
    }
    for name, (bad_loss, bad_right, bad_dZ) in loss_mistakes.items():
        assert _rejects(check, bad_loss, bad_right, np.asarray(bad_dZ, F32)), name

    # backward
    A32 = f32(A)
    gW, gb, D = naive.backward(Xb, A32, coefs, "tanh", dZ.astype(F32))
    assert not _rejects(naive.check_backward, Xb, A32, coefs, "tanh", f32(D), f32(gW), f32(gb), U32)
    relu_D = naive.backward(Xb, A32, coefs, "relu", dZ.astype(F32))[2]
    backward_mistakes = {
        "derivative of relu, not tanh": (relu_D, gW, gb),
        "derivative skipped": ([D[0] / naive.derivative("tanh", A32[0]), D[1], D[2]], gW, gb),
        "dW1 divided by m again": (D, [gW[0], gW[1] / m, gW[2]], gb),
        "dW2 from rows off by one": (D, [gW[0], gW[1], np.roll(A32[1], 1, 0).T.astype(float) @ D[2]], gb),
        "db2 left at zero": (D, gW, [gb[0], gb[1], 0 * gb[2]]),
    }
    for name, (bad_D, bad_gW, bad_gb) in backward_mistakes.items():
        assert _rejects(naive.check_backward, Xb, A32, coefs, "tanh", f32(bad_D), f32(bad_gW), f32(bad_gb), U32), name

    # several training steps
    problem = _train_problem("13-37-logistic-momentum")
    before, X, targets, perm, start, stop, bs, lrs, kind, wd, l2 = problem
    c0, i0 = _naive_net(before)
    hyper = {"momentum": 0.9}

    def train(**change):
        args = dict(
            X=X,
            labels=targets.labels,
            values=targets.values,
            weights=targets.weights,
            perm=perm,
            start=start,
            stop=stop,
            batch_size=bs,
            lrs=lrs,
            coefs=c0,
            intercepts=i0,
            activation=before.activation,
            head=before.head,
            kind=kind,
            hyper=hyper,
        )
        args.update(change)
        return naive.train_steps(**args)

    ref_W, ref_b, _, _ = train()
    steps = len(lrs)
    assert not _rejects(naive.assert_train_close, f32(ref_W), f32(ref_b), ref_W, ref_b, c0, i0, steps, U32)
    skip_last = train(stop=start + (steps - 1) * bs, lrs=lrs[:-1])
    twice = np.r_[perm[:1], perm[:-1]]
    train_mistakes = {
        "last partial batch skipped": skip_last,
        "one sample taken twice": train(perm=twice),
        "plain momentum instead of the velocity rule": train(kind="sgd"),
        "one learning rate for every step": train(lrs=np.full_like(lrs, lrs[0])),
        "momentum 0.8": train(hyper={"momentum": 0.8}),
    }
    for name, (bad_W, bad_b, _, _) in train_mistakes.items():
        assert _rejects(naive.assert_train_close, f32(bad_W), f32(bad_b), ref_W, ref_b, c0, i0, steps, U32), name
