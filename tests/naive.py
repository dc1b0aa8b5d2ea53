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
        zmax = z[i].max()
        lse = zmax + np.log(np.sum(np.exp(z[i] - zmax)))
        loss += lse - z[i, yb[i]]
        dlogits[i] = np.exp(z[i] - lse)
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
