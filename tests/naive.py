"""Slow, plainly correct float64 references for every backend kernel (stumpy's ``tests/naive.py``).

Same names as the kernels in :mod:`fastnn.backends.numpy_backend` and
:mod:`fastnn.backends.numba_backend`, with two differences that make them
references rather than a third backend:

* they compute in float64 from the (float32) inputs, so their rounding error
  (~1e-16 relative) is negligible next to float32's (~6e-8);
* they *return* their results instead of writing into caller-provided buffers,
  and loop where a loop states the math more plainly than an array expression.

Nothing here is shared with the backends except the definition of the epoch
shuffle's key schedule (:mod:`fastnn.backends._permute`), which is the spec.
"""

from __future__ import annotations

import math

import numpy as np

from fastnn.backends import _permute


def _f64(a) -> np.ndarray:
    return np.array(a, dtype=np.float64)


# --- shuffling and batching -------------------------------------------------


def _feistel(x: int, keys: list[int], k: int) -> int:
    """The keyed Feistel bijection on [0, 4**k), on Python ints, one value at a time."""
    mask = (1 << k) - 1
    left, right = x >> k, x & mask
    for key in keys:
        # Round function: SplitMix64's finaliser of (right XOR round key), cut to k bits.
        left, right = right, left ^ (_permute.splitmix64(right ^ key) & mask)
    return (left << k) | right


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s shuffle of ``range(n)``: Feistel bijection plus cycle walking."""
    keys = _permute.round_keys(seed, epoch)
    k = _permute.half_bits(n)
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


def gather(X, y, idx) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of ``X`` and ``y``; an index outside ``[0, n)`` raises IndexError."""
    n = len(X)
    for i in idx:
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} rows")
    return np.array([X[i] for i in idx]).reshape(len(idx), -1), np.array([y[i] for i in idx], np.int64)


# --- forward ------------------------------------------------------------------


def forward(Xb, W1, b1, W2, b2) -> tuple[np.ndarray, np.ndarray]:
    """(A1, logits):  A1 = relu(Xb W1 + b1),  logits = A1 W2 + b2."""
    Xb, W1, b1, W2, b2 = map(_f64, (Xb, W1, b1, W2, b2))
    A1 = np.maximum(Xb @ W1 + b1, 0.0)
    return A1, A1 @ W2 + b2


def predict_logits(X, W1, b1, W2, b2) -> np.ndarray:
    """Logits only: the forward pass of every row."""
    return forward(X, W1, b1, W2, b2)[1]


def softmax_xent(logits, yb) -> tuple[float, int, np.ndarray]:
    """(sum of per-sample losses, number correct, dlogits of the *mean* loss), row by row.

    loss_i = log sum_j exp(z_ij) - z_i,y_i, with log-sum-exp taken after
    subtracting the row max;  dlogits_i = (softmax(z_i) - onehot(y_i)) / m;
    a sample is correct when the first maximal logit is its label.
    """
    z = _f64(logits)
    m, c = z.shape
    dlogits = np.empty((m, c))
    loss, correct = 0.0, 0
    for i in range(m):
        shifted = z[i] - z[i].max()  # exact enough in float64 even for z ~ 3e38
        total = np.sum(np.exp(shifted))
        loss += np.log(total) - shifted[yb[i]]
        dlogits[i] = np.exp(shifted) / total
        dlogits[i, yb[i]] -= 1.0
        correct += int(np.argmax(z[i]) == yb[i])
    return float(loss), correct, dlogits / m


def mean_loss(Xb, yb, W1, b1, W2, b2) -> float:
    """The quantity SGD minimises: mean cross-entropy of the batch (for finite differences)."""
    _, logits = forward(Xb, W1, b1, W2, b2)
    return softmax_xent(logits, yb)[0] / len(yb)


# --- backward and update ------------------------------------------------------


def backward(Xb, A1, W2, dlogits) -> dict[str, np.ndarray]:
    """Gradients of the mean loss:  dW2 = A1^T G,  db2 = sum_i G_i,
    dZ1 = (G W2^T) * [A1 > 0],  dW1 = Xb^T dZ1,  db1 = sum_i dZ1_i   (G = dlogits)."""
    Xb, A1, W2, G = map(_f64, (Xb, A1, W2, dlogits))
    dZ1 = (G @ W2.T) * (A1 > 0)
    return {"dW1": Xb.T @ dZ1, "db1": dZ1.sum(axis=0), "dW2": A1.T @ G, "db2": G.sum(axis=0),
            "dA1": dZ1}


def update(W1, b1, W2, b2, dW1, db1, dW2, db2, lr) -> tuple[np.ndarray, ...]:
    """Plain SGD, new parameters:  p - lr * dp."""
    return tuple(_f64(p) - float(lr) * _f64(g) for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)))


# --- whole steps ----------------------------------------------------------------


def train_steps(X, y, perm, start, stop, batch_size, lr, W1, b1, W2, b2):
    """SGD over ``perm[start:stop]`` in batches (the last may be short), in float64.

    Returns ``((W1, b1, W2, b2), loss_sum, correct)``, loss and correct measured
    on each batch before its update, as the backends do.
    """
    params = tuple(map(_f64, (W1, b1, W2, b2)))
    loss_sum, correct = 0.0, 0
    for lo in range(start, stop, batch_size):
        Xb, yb = gather(X, y, perm[lo:min(lo + batch_size, stop)])
        A1, logits = forward(Xb, *params)
        loss, right, dlogits = softmax_xent(logits, yb)
        g = backward(Xb, A1, params[2], dlogits)
        params = update(*params, g["dW1"], g["db1"], g["dW2"], g["db2"], lr)
        loss_sum += loss
        correct += right
    return params, loss_sum, correct


# --- comparing float32 results with these references ----------------------------
#
# The derivation of these bounds is in the docstring of tests/test_kernels.py.

U32 = 2.0 ** -24  # unit roundoff of float32 (eps32 / 2)


def gamma(k: int) -> float:
    """Error factor of a float32 dot product of length ``k``, relative to sum |a_i b_i|.

    The worst case (Higham, Thm 3.5) is k*u; rounding errors that do not conspire
    grow like sqrt(k)*u (Higham & Mary 2019).  We use u * min(k, 8 sqrt(k)): the
    rigorous bound up to k = 64, eight standard deviations of the random-walk
    model above it.
    """
    return U32 * min(k, 8.0 * math.sqrt(k))


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
        i = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(err / np.maximum(bound, 1e-300), nan=np.inf), -1)),
                             err.shape)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements outside the float32 bound; "
                             f"worst at {tuple(int(j) for j in i)}: got {actual[i]!r}, expected {expected[i]!r}, "
                             f"bound {bound[i]:.3g}")


def forward_bounds(Xb, W1, b1, W2, b2) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on |A1 - A1_ref| and on |logits - logits_ref| for a float32 forward pass.

    A1 entries are length-(d+1) dot products (bias included; ReLU is 1-Lipschitz so
    it passes the bound through).  Logits are length-(h+1) dot products of the
    float32 A1, whose own error is pushed through |W2|.
    """
    d, h = np.shape(W1)
    A1_ref, _ = forward(Xb, W1, b1, W2, b2)
    bA1 = gamma(d + 1) * (abs_dot(Xb, W1) + np.abs(_f64(b1)))
    bL = gamma(h + 1) * (abs_dot(A1_ref + bA1, W2) + np.abs(_f64(b2))) + bA1 @ np.abs(_f64(W2))
    return bA1, bL


def check_forward(Xb, W1, b1, W2, b2, A1, logits) -> None:
    """Each layer against float64 given the same float32 inputs, so errors never compound:
    A1 from (Xb, W1, b1); logits from the kernel's *own* A1 and (W2, b2)."""
    h = np.shape(W1)[1]
    A1_ref, _ = forward(Xb, W1, b1, W2, b2)
    assert_within(A1, A1_ref, forward_bounds(Xb, W1, b1, W2, b2)[0], "A1")
    assert_within(logits, _f64(A1) @ _f64(W2) + _f64(b2),
                  gamma(h + 1) * (abs_dot(A1, W2) + np.abs(_f64(b2))), "logits")


def softmax_bounds(logits, yb) -> tuple[float, float]:
    """(bound on the batch loss sum, elementwise bound on dlogits).

    Per sample: z_j - z_max is rounded (error u|z_j - z_max|, which exp turns into a
    relative error of at most u/e of the total), exp and the c-term sum add about
    (2c + 2)u relative to the total, log and the final subtraction u(1 + |loss_i|).
    So |d loss_i| <= u(|z_y - z_max| + |loss_i| + 2c + 4); dlogits_ij gets at most
    (2c + 8)u / m absolute.  Both doubled for margin.
    """
    z = _f64(logits)
    m, c = z.shape
    zmax = z.max(axis=1)
    zy = z[np.arange(m), yb]
    loss_i = np.log(np.exp(z - zmax[:, None]).sum(axis=1)) - (zy - zmax)
    return 2 * U32 * float(np.sum(np.abs(zy - zmax) + np.abs(loss_i) + 2 * c + 4)), 2 * (2 * c + 8) * U32 / m


def check_softmax_xent(logits, yb, loss, correct, dlogits) -> None:
    loss_ref, correct_ref, dlogits_ref = softmax_xent(logits, yb)
    b_loss, b_dlogits = softmax_bounds(logits, yb)
    assert np.isfinite(loss) and abs(loss - loss_ref) <= b_loss, (loss, loss_ref, b_loss)
    assert correct == correct_ref
    assert_within(dlogits, dlogits_ref, b_dlogits, "dlogits")


def backward_bounds(Xb, A1, W2, dlogits) -> dict[str, np.ndarray]:
    """Bounds on each gradient of a float32 backward pass, from its inputs alone.

    dZ1 = (G W2^T) masked: length-c dot products.  dW2 = A1^T G, db2 = sum G:
    length m.  dW1 = Xb^T dZ1, db1 = sum dZ1: length m, plus dZ1's own error
    pushed through |Xb^T|.
    """
    m, c = np.shape(dlogits)
    ref = backward(Xb, A1, W2, dlogits)
    G = np.abs(_f64(dlogits))
    bZ = gamma(c) * (G @ np.abs(_f64(W2)).T) * (_f64(A1) > 0)
    dZ1 = np.abs(ref["dA1"]) + bZ
    return {"dA1": bZ, "dW2": gamma(m) * abs_dot(_f64(A1).T, G), "db2": gamma(m) * G.sum(axis=0),
            "dW1": gamma(m) * abs_dot(_f64(Xb).T, dZ1) + abs_dot(_f64(Xb).T, bZ),
            "db1": gamma(m) * dZ1.sum(axis=0) + bZ.sum(axis=0)}


def check_backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1) -> None:
    """dZ1, dW2 and db2 from the inputs; dW1 and db1 given the kernel's *own* dZ1
    (returned in dA1), so that each product is checked on its own."""
    m = np.shape(dlogits)[0]
    ref = backward(Xb, A1, W2, dlogits)
    bounds = backward_bounds(Xb, A1, W2, dlogits)
    for name, got in (("dA1", dA1), ("dW2", dW2), ("db2", db2)):
        assert_within(got, ref[name], bounds[name], name)
    dZ1 = _f64(dA1)
    assert_within(dW1, _f64(Xb).T @ dZ1, gamma(m) * abs_dot(_f64(Xb).T, dZ1), "dW1")
    assert_within(db1, dZ1.sum(axis=0), gamma(m) * np.abs(dZ1).sum(axis=0), "db1")


def update_bound(before, grads, lr) -> tuple[np.ndarray, ...]:
    """p - lr*dp in float32: lr itself, the product and the difference are each rounded once;
    2u(2|lr dp| + |p_new|) (doubled for margin)."""
    return tuple(2 * U32 * (2 * np.abs(float(lr) * _f64(g)) + np.abs(new))
                 for g, new in zip(grads, update(*before, *grads, lr)))


def check_update(before, grads, lr, after) -> None:
    for name, new, ref, bound in zip(("W1", "b1", "W2", "b2"), after, update(*before, *grads, lr),
                                     update_bound(before, grads, lr)):
        assert_within(new, ref, bound, name)


# Measured over the train_steps cases of tests/test_kernels.py (up to 20 steps, h up to
# 800) and 2 epochs in tests/test_training.py: float32 parameters differ from float64
# SGD by at most 2e-6 of the largest change float64 SGD made to them.
SGD_REL = 1e-4


def assert_sgd_close(params, ref, before, steps: int, what: str = "") -> None:
    """Parameters after ``steps`` float32 SGD steps vs float64 SGD from the same start.

    Per parameter array: SGD_REL times the largest change float64 SGD made to it,
    plus 2u|p| per step for rounding the stored parameter.  Plausible mistakes
    (a skipped batch, the wrong divisor, a stale weight, a missing bias update)
    move some parameter by 0.06 or more of its change; see test_kernels.
    """
    for name, p, r, p0 in zip(("W1", "b1", "W2", "b2"), params, ref, before):
        change = np.abs(_f64(r) - _f64(p0)).max()
        assert_within(p, r, SGD_REL * change + 2 * steps * U32 * np.abs(_f64(r)), f"{what}{name}")
