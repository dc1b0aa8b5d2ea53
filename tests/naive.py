"""Slow, plainly correct float64 references for every backend kernel (stumpy's ``tests/naive.py``).

Same names as the kernels in :mod:`fastnn.backends.numpy_backend` and
:mod:`fastnn.backends.numba_backend`, with two differences that make them
references rather than a third backend:

* they compute in float64 from the (float32) inputs, so their rounding error
  (~1e-16 relative) is negligible next to float32's (~6e-8);
* they *return* their results instead of writing into caller-provided buffers,
  and loop over samples where a loop states the math more plainly than an array
  expression.

A network is given as plain lists ``coefs`` (``(fan_in, fan_out)`` each) and
``intercepts``, an activation name and a head name.  Nothing here is shared with
the backends except the definition of the epoch shuffle's keys
(:mod:`fastnn._keys`), which is the spec, and the names of activations, heads
and optimizers.  Dropout masks are drawn here from their definition
(:mod:`fastnn.dropout`'s docstring) with Python ints, one draw at a time.
"""

from __future__ import annotations

import math

import numpy as np

from fastnn import _keys


def _f64(a) -> np.ndarray:
    return np.array(a, dtype=np.float64)


# --- shuffling and batching -------------------------------------------------


def _feistel(x: int, keys, k: int) -> int:
    """The keyed Feistel bijection on [0, 4**k), on Python ints, one value at a time."""
    mask = (1 << k) - 1
    left, right = x >> k, x & mask
    for key in keys:
        # Round function: SplitMix64's finaliser of (right XOR round key), cut to k bits.
        left, right = right, left ^ (_keys.splitmix64(right ^ int(key)) & mask)
    return (left << k) | right


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s shuffle of ``range(n)``: Feistel bijection plus cycle walking."""
    keys = _keys.round_keys(seed, epoch)
    k = _keys.half_bits(n)
    out = np.empty(n, np.int64)
    for i in range(n):
        x = _feistel(i, keys, k)
        while x >= n:  # walk the cycle until it comes back into [0, n)
            x = _feistel(x, keys, k)
        out[i] = x
    return out


def is_permutation(p, n: int) -> bool:
    """True iff ``p`` holds every index of ``range(n)`` exactly once."""
    p = np.asarray(p)
    if p.shape != (n,):
        return False
    seen = np.zeros(n, np.int64)
    for v in p:
        if not 0 <= v < n:
            return False
        seen[v] += 1
    return bool((seen == 1).all())


def gather(X, idx) -> np.ndarray:
    """Rows ``idx`` of ``X``; an index outside ``[0, n)`` raises IndexError."""
    n = len(X)
    for i in idx:
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} rows")
    return np.array([X[i] for i in idx]).reshape(len(idx), -1)


# --- dropout ----------------------------------------------------------------------

#: The dropout stream's salt, as :mod:`fastnn.dropout`'s definition states it.
DROPOUT_SALT = 0xE7037ED1A0B428DB


def dropout_keep(seed: int, epoch: int, rows, n_units: int, p: float) -> np.ndarray:
    """``(len(rows), n_units)`` bool, True where hidden unit ``j`` (its index among all
    hidden units) of training row ``rows[a]`` is kept in epoch ``epoch``: its draw
    ``u = (mix(k_i + (j + 1) GOLDEN) >> 11) 2**-53 >= p``, ``k_i = mix(K_e + i GOLDEN)``,
    ``K_e = mix(mix(seed ^ DROPOUT_SALT) ^ (epoch GOLDEN))``, all mod 2**64."""
    golden, mask = _keys.GOLDEN, (1 << 64) - 1
    epoch_key = _keys.splitmix64(_keys.splitmix64(seed ^ DROPOUT_SALT) ^ ((epoch * golden) & mask))
    keep = np.empty((len(rows), n_units), bool)
    for a, i in enumerate(rows):
        row_key = _keys.splitmix64(epoch_key + int(i) * golden)
        for j in range(n_units):
            u = (_keys.splitmix64(row_key + (j + 1) * golden) >> 11) * 2.0**-53
            keep[a, j] = u >= p
    return keep


def dropout_multipliers(keep, hidden, p: float) -> list[np.ndarray]:
    """``keep / (1 - p)`` in float64, split into the hidden layers of widths ``hidden``."""
    mult = _f64(keep) / (1.0 - p)
    return np.split(mult, np.cumsum(hidden)[:-1], axis=1) if len(hidden) else []


# --- activations and heads ------------------------------------------------------


def activate(name: str, Z) -> np.ndarray:
    """The hidden activation, elementwise."""
    Z = _f64(Z)
    return {
        "identity": lambda z: z,
        "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0.0),
    }[name](Z)


def derivative(name: str, A) -> np.ndarray:
    """f'(z) written through the activation's output a = f(z)."""
    A = _f64(A)
    return {
        "identity": np.ones_like(A),
        "logistic": A * (1.0 - A),
        "tanh": 1.0 - A * A,
        "relu": (A > 0).astype(np.float64),
    }[name]


#: Largest slope of each activation: how far an error in z can move f(z).
LIPSCHITZ = {"identity": 1.0, "logistic": 0.25, "tanh": 1.0, "relu": 1.0}


def output(head: str, Z) -> np.ndarray:
    """The head's output function, row by row."""
    Z = _f64(Z)
    if head == "softmax":
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return {"logistic": lambda z: 1.0 / (1.0 + np.exp(-z)), "identity": lambda z: z, "exp": np.exp}[head](Z)


def sample_loss(head: str, z, label, t) -> float:
    """One sample's loss: cross-entropy, binary cross-entropy, half squared error, or half
    Poisson deviance (see :mod:`fastnn.activations`)."""
    z = _f64(z)
    if head == "softmax":
        shifted = z - z.max()
        return float(np.log(np.sum(np.exp(shifted))) - shifted[label])
    t = _f64(t)
    if head == "logistic":
        return float(sum(max(zj, 0.0) + math.log1p(math.exp(-abs(zj))) - tj * zj for zj, tj in zip(z, t)))
    if head == "identity":
        return float(0.5 * np.sum((z - t) ** 2))
    return float(sum(math.exp(zj) - tj * zj + (tj * math.log(tj) if tj > 0 else 0.0) - tj for zj, tj in zip(z, t)))


def loss(head: str, Z, labels, values, weights) -> tuple[float, int, np.ndarray]:
    """(sum_i w_i loss_i * m / sum(w), rows right, dZ = w_i (output - target) / sum(w)).

    A row is right when its top class is its label (softmax) or every output is
    on the target's side of 0.5 (logistic); no row counts for the regression heads.
    """
    Z = _f64(Z)
    m, c = Z.shape
    w = _f64(weights)
    sw = w.sum()
    total, right = 0.0, 0
    dZ = output(head, Z)
    for i in range(m):
        label = labels[i] if head == "softmax" else None
        t = None if head == "softmax" else values[i]
        total += w[i] * sample_loss(head, Z[i], label, t)
        if head == "softmax":
            dZ[i, label] -= 1.0
            right += int(np.argmax(Z[i]) == label)
        else:
            dZ[i] -= _f64(t)
            if head == "logistic":
                right += int(np.all((Z[i] > 0) == (_f64(t) > 0.5)))
        dZ[i] *= w[i] / sw
    return total * m / sw, right, dZ


# --- forward and backward --------------------------------------------------------------


def forward(Xb, coefs, intercepts, activation: str, mult=None, unmasked=None) -> list[np.ndarray]:
    """Every layer's output: a_i = f(a_{i-1} W_i + b_i), the last one raw (no head).

    With dropout, hidden layer i's output is f(z_i) * mult[i] (``mult[i] = k / (1 - p)``),
    and the list ``unmasked`` (if given) receives each f(z_i).
    """
    outputs, a = [], _f64(Xb)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ _f64(W) + _f64(b)
        a = z if i == len(coefs) - 1 else activate(activation, z)
        if mult is not None and i < len(coefs) - 1:
            if unmasked is not None:
                unmasked.append(a)
            a = a * _f64(mult[i])
        outputs.append(a)
    return outputs


def predict(X, coefs, intercepts, activation: str) -> np.ndarray:
    """The raw outputs only: the forward pass of every row."""
    return forward(X, coefs, intercepts, activation)[-1]


def backward(Xb, A, coefs, activation: str, dZ, mult=None, unmasked=None) -> tuple[list, list, list]:
    """(weight gradients, bias gradients, D) from the output gradient ``dZ``.

    D[i] is the gradient with respect to layer i's pre-activation:
    D[L-1] = dZ;  D[i-1] = (D[i] W_i^T) * f'(A[i-1]);  dW_i = A[i-1]^T D[i] (A[-1] = Xb);
    db_i = sum over rows of D[i].  With dropout (``mult`` and ``unmasked`` from
    :func:`forward`): D[i-1] = (D[i] W_i^T) * mult[i-1] * f'(unmasked[i-1]).
    """
    L = len(coefs)
    D = [None] * L
    D[-1] = _f64(dZ)
    inputs = [_f64(Xb)] + [_f64(a) for a in A[:-1]]
    gW, gb = [None] * L, [None] * L
    for i in reversed(range(L)):
        gW[i] = inputs[i].T @ D[i]
        gb[i] = D[i].sum(axis=0)
        if i > 0 and mult is not None:
            D[i - 1] = (D[i] @ _f64(coefs[i]).T) * _f64(mult[i - 1]) * derivative(activation, unmasked[i - 1])
        elif i > 0:
            D[i - 1] = (D[i] @ _f64(coefs[i]).T) * derivative(activation, A[i - 1])
    return gW, gb, D


def mean_loss(Xb, labels, values, weights, coefs, intercepts, activation, head, l2=0.0, mult=None) -> float:
    """The quantity a step minimises: the weighted mean loss plus ``l2 ||W||**2 / (2 sum(w))``
    (for finite differences; ``mult`` a fixed dropout mask, as :func:`forward`'s)."""
    Z = forward(Xb, coefs, intercepts, activation, mult)[-1]
    total, _, _ = loss(head, Z, labels, values, weights)
    sw = float(np.sum(_f64(weights)))
    return total / len(Xb) + 0.5 * l2 * sum(float(np.sum(_f64(W) ** 2)) for W in coefs) / sw


# --- optimizers (scikit-learn's formulation; fastnn.optimizers) -------------------------


def rule_step(kind: str, p, g, state: dict, rate: float, decay: float, hyper: dict) -> np.ndarray:
    """One step of the rule on one array; returns the new parameters and updates ``state``."""
    p, g = _f64(p), _f64(g) + decay * _f64(p)
    mu = hyper.get("momentum", 0.9)
    if kind == "sgd":
        return p - rate * g
    if kind in ("momentum", "nesterov"):
        v = mu * state.get("v", 0.0) - rate * g
        state["v"] = v
        return p + v if kind == "momentum" else p + mu * v - rate * g
    b2, eps = hyper.get("beta2", 0.999), hyper.get("eps", 1e-8)
    m = mu * state.get("m", 0.0) + (1 - mu) * g
    v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    return p - rate * m / (np.sqrt(v) + eps)


def adam_rate(lr: float, t: int, hyper: dict) -> float:
    """Adam's step size at step t = 1, 2, ...: the bias correction folded into the rate."""
    b1, b2 = hyper.get("momentum", 0.9), hyper.get("beta2", 0.999)
    return lr * math.sqrt(1 - b2**t) / (1 - b1**t)


def train_steps(
    X,
    labels,
    values,
    weights,
    perm,
    start,
    stop,
    batch_size,
    lrs,
    coefs,
    intercepts,
    activation,
    head,
    kind="sgd",
    hyper=None,
    weight_decay=0.0,
    l2=0.0,
    state=None,
    t0=0,
    keep=None,
    p=0.0,
):
    """Mini-batch steps over ``perm[start:stop]`` (the last batch may be short), in float64.

    Returns ``(coefs, intercepts, loss_sum, correct)``: loss (with the L2 penalty
    term, scaled as the loss) and correct measured on each batch before its update,
    as the backends do.  ``state`` (a dict, updated) carries the optimizer's
    buffers between calls; ``t0`` steps were taken before (Adam's bias correction).
    With dropout at rate ``p``, ``keep`` holds every training row's keep mask over all
    hidden units (:func:`dropout_keep` of ``range(len(X))``), indexed by row.
    """
    hyper = hyper or {}
    state = {} if state is None else state
    coefs, intercepts = [_f64(W) for W in coefs], [_f64(b) for b in intercepts]
    total, correct = 0.0, 0
    for k, lo in enumerate(range(start, stop, batch_size)):
        idx = perm[lo : min(lo + batch_size, stop)]
        m = len(idx)
        Xb = gather(X, idx)
        w = _f64(weights)[idx]
        hidden = [len(b) for b in intercepts[:-1]]
        mult = None if keep is None else dropout_multipliers(np.asarray(keep)[idx], hidden, p)
        unmasked = []
        A = forward(Xb, coefs, intercepts, activation, mult, unmasked)
        batch_loss, right, dZ = loss(
            head, A[-1], None if head != "softmax" else labels[idx], None if head == "softmax" else values[idx], w
        )
        sw = w.sum()
        batch_loss += 0.5 * l2 * sum(np.sum(W**2) for W in coefs) * m / sw
        gW, gb, _ = backward(Xb, A, coefs, activation, dZ, mult, unmasked)
        rate = adam_rate(lrs[k], t0 + k + 1, hyper) if kind == "adam" else lrs[k]
        decay = weight_decay + l2 / sw
        for i in range(len(coefs)):
            coefs[i] = rule_step(kind, coefs[i], gW[i], state.setdefault(("W", i), {}), rate, decay, hyper)
            intercepts[i] = rule_step(kind, intercepts[i], gb[i], state.setdefault(("b", i), {}), rate, 0.0, hyper)
        total += batch_loss
        correct += right
    return coefs, intercepts, total, correct


# --- comparing float32 (or float64) results with these references ----------------------
#
# The derivation of these bounds is in the docstring of tests/test_kernels.py.


def unit(dtype) -> float:
    """Unit roundoff of ``dtype`` (eps / 2): 2**-24 for float32, 2**-53 for float64."""
    return float(np.finfo(dtype).eps) / 2


def gamma(k: int, u: float) -> float:
    """Error factor of a dot product of length ``k``, relative to sum |a_i b_i|.

    The worst case (Higham, Thm 3.5) is k*u; rounding errors that do not conspire
    grow like sqrt(k)*u (Higham & Mary 2019).  We use u * min(k, 8 sqrt(k)): the
    rigorous bound up to k = 64, eight standard deviations of the random-walk
    model above it.
    """
    return u * min(k, 8.0 * math.sqrt(k))


def abs_dot(A, B) -> np.ndarray:
    """|A| @ |B| in float64: the sum of absolute products each dot product is measured against."""
    return np.abs(_f64(A)) @ np.abs(_f64(B))


def assert_within(actual, expected, bound, what: str) -> None:
    """Fail unless |actual - expected| <= bound elementwise (NaN or inf in actual fails)."""
    actual, expected = _f64(actual), _f64(expected)
    bound = np.broadcast_to(_f64(bound), expected.shape)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    err = np.abs(actual - expected)
    bad = ~(err <= bound)
    if bad.any():
        i = np.unravel_index(
            np.argmax(np.where(bad, np.nan_to_num(err / np.maximum(bound, 1e-300), nan=np.inf), -1)), err.shape
        )
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements outside the rounding bound; "
            f"worst at {tuple(int(j) for j in i)}: got {actual[i]!r}, expected {expected[i]!r}, "
            f"bound {bound[i]:.3g}"
        )


def layer_bound(inputs, W, b, activation, last: bool, u: float) -> np.ndarray:
    """Bound on |a - a_ref| for one layer computed in the kernel's precision from ``inputs``.

    The pre-activation is a dot product of length fan_in + 1 (bias included); the
    activation moves its error by at most its slope and adds a few roundings of its own.
    """
    fan_in = np.shape(W)[0]
    bz = gamma(fan_in + 1, u) * (abs_dot(inputs, W) + np.abs(_f64(b)))
    if last:
        return bz
    a = activate(activation, _f64(inputs) @ _f64(W) + _f64(b))
    return LIPSCHITZ[activation] * bz + 8 * u * np.abs(a)


def check_forward(Xb, coefs, intercepts, activation, A, u) -> None:
    """Each layer against float64 given the kernel's *own* previous layer, so errors never compound."""
    inputs = Xb
    for i, (W, b, a) in enumerate(zip(coefs, intercepts, A)):
        last = i == len(coefs) - 1
        z = _f64(inputs) @ _f64(W) + _f64(b)
        ref = z if last else activate(activation, z)
        assert_within(a, ref, layer_bound(inputs, W, b, activation, last, u), f"layer {i}")
        inputs = a


def predict_bound(X, coefs, intercepts, activation, u) -> np.ndarray:
    """Bound on the raw outputs of a whole forward pass: each layer's own rounding, plus
    the error of its inputs pushed through |W| (and the activation's slope)."""
    a, err = _f64(X), np.zeros(np.shape(X))
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ _f64(W) + _f64(b)
        bz = gamma(np.shape(W)[0] + 1, u) * (abs_dot(np.abs(a) + err, W) + np.abs(_f64(b))) + abs_dot(err, W)
        if i == len(coefs) - 1:
            return bz
        a = activate(activation, z)
        err = LIPSCHITZ[activation] * bz + 8 * u * np.abs(a)
    raise ValueError("a network has at least one layer")


def loss_bounds(head, Z, labels, values, weights, u) -> tuple[float, np.ndarray]:
    """(bound on the loss sum, elementwise bound on dZ) for a head computed in precision ``u``.

    Per sample the loss is computed in float64 from the kernel's outputs, after
    float32 roundings of the max shift and the exponentials: at most
    u(|z_y - z_max| + |loss_i| + 2c + 4) for softmax, u(c + |loss_i|) x 8 for the
    others.  dZ = w_i (output - target) / sum(w): output, difference and scaling are
    each rounded, (2c + 8)u relative to w_i / sum(w) (|output| + |target| + 1).
    Both doubled for margin.
    """
    Z = _f64(Z)
    m, c = Z.shape
    w = _f64(weights)
    sw = w.sum()
    per = np.array(
        [
            sample_loss(head, Z[i], None if labels is None else labels[i], None if values is None else values[i])
            for i in range(m)
        ]
    )
    if head == "softmax":
        zy = Z[np.arange(m), labels]
        err = np.abs(zy - Z.max(axis=1)) + np.abs(per) + 2 * c + 4
        t = np.zeros_like(Z)
    else:
        t = _f64(values)
        err = 8 * (c + np.abs(per) + np.abs(Z).sum(axis=1))
    out = output(head, Z)
    b_loss = 2 * u * float(np.sum(w * err)) * m / sw + 1e-12 * abs(float(np.sum(w * per)))
    b_dZ = 2 * (2 * c + 8) * u * (w / sw)[:, None] * (np.abs(out) + np.abs(t) + 1.0)
    return b_loss, b_dZ


def check_loss(head, Z, labels, values, weights, got_loss, got_correct, got_dZ, u) -> None:
    ref_loss, ref_correct, ref_dZ = loss(head, Z, labels, values, weights)
    b_loss, b_dZ = loss_bounds(head, Z, labels, values, weights, u)
    assert np.isfinite(got_loss) and abs(got_loss - ref_loss) <= b_loss, (got_loss, ref_loss, b_loss)
    assert got_correct == ref_correct, (got_correct, ref_correct)
    assert_within(got_dZ, ref_dZ, b_dZ, "dZ")


def check_backward(Xb, A, coefs, activation, D, gW, gb, u) -> None:
    """Each gradient against float64 given the kernel's *own* gradient of the layer after it
    (D[i] from D[i + 1], dW_i and db_i from D[i]), so that each product is checked on its own.
    ``A`` are the activations the backward pass read; ``D`` what it wrote."""
    m = len(Xb)
    inputs = [_f64(Xb)] + [_f64(a) for a in A[:-1]]
    for i in reversed(range(len(coefs))):
        Di = _f64(D[i])
        assert_within(gW[i], inputs[i].T @ Di, gamma(m, u) * abs_dot(inputs[i].T, Di), f"dW{i}")
        assert_within(gb[i], Di.sum(axis=0), gamma(m, u) * np.abs(Di).sum(axis=0), f"db{i}")
        if i > 0:
            n_next = np.shape(coefs[i])[1]
            dA = Di @ _f64(coefs[i]).T
            slope = np.abs(derivative(activation, A[i - 1]))
            bound = gamma(n_next, u) * abs_dot(Di, _f64(coefs[i]).T) * slope + 8 * u * np.abs(dA * slope)
            assert_within(D[i - 1], dA * derivative(activation, A[i - 1]), bound, f"D{i - 1}")


def step_bound(before, after_ref, rate, grad, u) -> np.ndarray:
    """One rule step in the kernel's precision: a handful of roundings of the terms involved,
    8u(|p_new| + |rate g| + |p - p_new|)."""
    return 8 * u * (np.abs(_f64(after_ref)) + np.abs(rate * _f64(grad)) + np.abs(_f64(before) - _f64(after_ref)))


# Measured over the train_steps cases of tests/test_kernels.py (up to 8 steps, depths up
# to 4, every activation, head and optimizer, both backends and both numba paths):
# float32 parameters differ from float64 training by at most 1.1e-5 of the largest change
# float64 training made to them (Adam on a tanh network: the most).
TRAIN_REL = 3e-4


def assert_train_close(
    coefs, intercepts, ref_coefs, ref_intercepts, before_coefs, before_intercepts, steps: int, u: float, what: str = ""
) -> None:
    """Parameters after ``steps`` steps in the kernel's precision vs float64 training.

    Per parameter array: TRAIN_REL times the largest change float64 made to it,
    plus 2u|p| per step for rounding the stored parameter.  Plausible mistakes (a
    skipped batch, the wrong divisor, a stale weight, a missing bias update) move
    some parameter by 0.06 or more of its change; see test_kernels.
    """
    pairs = [(f"W{i}", p, r, p0) for i, (p, r, p0) in enumerate(zip(coefs, ref_coefs, before_coefs))]
    pairs += [(f"b{i}", p, r, p0) for i, (p, r, p0) in enumerate(zip(intercepts, ref_intercepts, before_intercepts))]
    for name, p, r, p0 in pairs:
        change = np.abs(_f64(r) - _f64(p0)).max()
        assert_within(p, r, TRAIN_REL * change + 2 * steps * u * np.abs(_f64(r)), f"{what}{name}")
