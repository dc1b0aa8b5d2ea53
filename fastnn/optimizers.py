"""Optimizers: each a small object carrying its rule, its state and its step count.

Modelled on scikit-learn's ``_stochastic_optimizers.py``, with ``g`` the
gradient of the mean loss plus ``decay * p`` for weights (not biases), and
``r`` the step's rate:

* ``sgd``:       p -= r g
* ``momentum``:  v = mu v - r g;  p += v
* ``nesterov``:  v = mu v - r g;  p += mu v - r g
* ``adam``:      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g**2;  p -= r m / (sqrt(v) + eps),
  with the bias correction folded into the rate once per step:
  ``r = lr sqrt(1 - b2**t) / (1 - b1**t)`` at step ``t = 1, 2, ...``

(scikit-learn's and Sutskever et al.'s momentum; Kingma & Ba's Adam in the
form of their section 2, which scikit-learn uses.)  ``decay`` is
``weight_decay + l2 / sum_w``: a fixed L2 weight decay, plus scikit-learn's
``alpha`` (``l2``) divided by the batch's total sample weight (its size when
unweighted), the gradient of scikit-learn's penalty ``alpha ||W||**2 / (2 n)``.

Learning rates always travel as an array, one per step of a chunk of
training (:meth:`Optimizer.rates`), so schedules, bias correction and the
compiled backend never branch on "one rate or many".  :meth:`Optimizer.update`
is the rule in NumPy, the definition the reference backend runs; the compiled
backend implements the same rule per ``kind`` (the index in :data:`OPTIMIZERS`).
"""

from __future__ import annotations

import numpy as np

from .layers import Layout, Params

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


class Optimizer:
    """Base: the step count and the hyperparameters every rule has."""

    name = ""
    #: Names of the state buffers (each a :class:`~fastnn.layers.Params` of the network's layout).
    buffers: tuple = ()

    def __init__(
        self,
        layout: Layout,
        *,
        momentum: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        l2: float = 0.0,
    ):
        self.momentum, self.beta2, self.eps = float(momentum), float(beta2), float(eps)
        self.weight_decay, self.l2 = float(weight_decay), float(l2)
        self.t = 0  # steps taken
        self.state = {name: Params(layout) for name in self.buffers}

    @property
    def kind(self) -> int:
        """The rule's code in compiled kernels."""
        return OPTIMIZERS.index(self.name)

    def rates(self, lrs) -> np.ndarray:
        """The rates of the next ``len(lrs)`` steps for the learning rates ``lrs`` (float64)."""
        return np.asarray(lrs, np.float64).reshape(-1)

    def advance(self, steps: int) -> None:
        """Count ``steps`` steps as taken (after the backend applied them)."""
        self.t += int(steps)

    def decay(self, weight_sum: float) -> float:
        """The step's decay on weights: fixed weight decay plus ``l2`` over the batch's weight."""
        return self.weight_decay + (self.l2 / weight_sum if self.l2 else 0.0)

    def fused(self) -> bool:
        """Plain SGD without any decay: backends may fuse the update into the gradient's product."""
        return False

    def update(self, params: Params, grads: Params, rate: float, decay: float) -> None:
        """One step of the rule on every parameter, in place (the reference; NumPy)."""
        dtype = params.dtype.type
        rate, decay = dtype(rate), dtype(decay)
        for i, (p, g) in enumerate(_pairs(params, grads)):
            if decay and p.ndim == 2:
                g = g + decay * p
            self._rule(p, g, rate, [_block(buf, i) for buf in self.state.values()])

    def _rule(self, p, g, rate, buffers) -> None:
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """The state to checkpoint: the step count and every buffer's flat array."""
        return {"t": np.array(self.t), **{name: buf.flat for name, buf in self.state.items()}}

    def load_state(self, arrays: dict) -> None:
        """Restore what :meth:`state_arrays` gave (same layout)."""
        self.t = int(arrays["t"])
        for name, buf in self.state.items():
            buf.flat[...] = arrays[name]


def _pairs(params: Params, grads: Params):
    """Each parameter array with its gradient: weights then biases, layer by layer."""
    for (W, b), (gW, gb) in zip(params.blocks(), grads.blocks()):
        yield W, gW
        yield b, gb


def _block(buf: Params, i: int) -> np.ndarray:
    """Block ``i`` of ``buf`` in :func:`_pairs` order."""
    return buf.coefs[i // 2] if i % 2 == 0 else buf.intercepts[i // 2]


class SGD(Optimizer):
    """Plain stochastic gradient descent: p -= r g."""

    name = "sgd"

    def fused(self) -> bool:
        return self.weight_decay == 0.0 and self.l2 == 0.0

    def _rule(self, p, g, rate, buffers) -> None:
        p -= rate * g


class Momentum(Optimizer):
    """Heavy-ball momentum: v = mu v - r g; p += v."""

    name = "momentum"
    buffers = ("velocity",)

    def _rule(self, p, g, rate, buffers) -> None:
        (v,) = buffers
        v *= p.dtype.type(self.momentum)
        v -= rate * g
        p += v


class Nesterov(Momentum):
    """Nesterov momentum: v = mu v - r g; p += mu v - r g."""

    name = "nesterov"

    def _rule(self, p, g, rate, buffers) -> None:
        (v,) = buffers
        mu = p.dtype.type(self.momentum)
        v *= mu
        v -= rate * g
        p += mu * v - rate * g


class Adam(Optimizer):
    """Adam: moment estimates m, v; the bias correction folded into each step's rate."""

    name = "adam"
    buffers = ("m", "v")

    def rates(self, lrs) -> np.ndarray:
        lrs = super().rates(lrs)
        t = self.t + 1 + np.arange(len(lrs), dtype=np.float64)
        return lrs * np.sqrt(1.0 - self.beta2**t) / (1.0 - self.momentum**t)

    def _rule(self, p, g, rate, buffers) -> None:
        m, v = buffers
        f = p.dtype.type
        b1, b2 = f(self.momentum), f(self.beta2)
        m *= b1
        m += (f(1) - b1) * g
        v *= b2
        v += (f(1) - b2) * (g * g)
        p -= rate * m / (np.sqrt(v) + f(self.eps))


_CLASSES = {cls.name: cls for cls in (SGD, Momentum, Nesterov, Adam)}
assert tuple(_CLASSES) == OPTIMIZERS


def make_optimizer(name: str, layout: Layout, **hyper) -> Optimizer:
    """The optimizer called ``name`` for parameters of ``layout``; ``hyper`` as :class:`Optimizer`."""
    if name not in _CLASSES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return _CLASSES[name](layout, **hyper)
