"""Optimizer state shared by the backends: which rule, its hyperparameters, its buffers.

The update rules themselves live in each backend (``apply_update``); this
module only says what they are and holds their state between calls, so that a
run can move between chunks, epochs and backends without losing momentum.

Rules, with ``g`` the mean-loss gradient plus ``weight_decay * p`` for weights
(not biases):

* ``sgd``:       p -= lr * g
* ``momentum``:  m = mu * m + g;             p -= lr * m
* ``nesterov``:  m = mu * m + g;             p -= lr * (g + mu * m)
* ``adam``:      m = mu * m + (1 - mu) * g;  v = b2 * v + (1 - b2) * g**2;
                 p -= lr * (m / (1 - mu**t)) / (sqrt(v / (1 - b2**t)) + eps)

(momentum and Nesterov as in PyTorch's SGD; Adam as in Kingma & Ba, with
``mu`` as beta1.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _aligned

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SGD, MOMENTUM, NESTEROV, ADAM = range(4)


@dataclass
class OptimizerState:
    """One training run's optimizer: rule code, hyperparameters, step count and buffers."""

    kind: int = SGD
    momentum: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    t: int = 0  # update steps taken so far (Adam's bias correction)
    m: list = field(default_factory=list)  # first-moment / velocity buffers, one per parameter
    v: list = field(default_factory=list)  # second-moment buffers (Adam only)

    @property
    def fused_sgd(self) -> bool:
        """True when the rule is plain SGD without decay: backends may fuse it into the gradient."""
        return self.kind == SGD and self.weight_decay == 0.0


def make_optimizer(name: str, params, *, momentum=0.9, beta2=0.999, eps=1e-8,
                   weight_decay=0.0) -> OptimizerState:
    """State for optimizer ``name`` over the parameter arrays ``params`` (W1, b1, W2, b2)."""
    kind = OPTIMIZERS.index(name)
    empty = [np.zeros(0, np.float32) for _ in params]
    m = [_aligned.zeros(p.shape) for p in params] if kind != SGD else empty
    v = [_aligned.zeros(p.shape) for p in params] if kind == ADAM else list(empty)
    return OptimizerState(kind, float(momentum), float(beta2), float(eps), float(weight_decay), 0, m, v)


def bias_corrections(state: OptimizerState, t: int) -> tuple[float, float]:
    """Adam's ``1 - beta1**t`` and ``1 - beta2**t`` for step ``t`` (1, 1 for the other rules)."""
    if state.kind != ADAM:
        return 1.0, 1.0
    return 1.0 - state.momentum ** t, 1.0 - state.beta2 ** t
