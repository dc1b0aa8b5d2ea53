"""The fitted state: initial weights, the network behind ``coefs_``, the stochastic solver's state.

``coefs_`` and ``intercepts_`` *are* the model, as in scikit-learn: every fit
or prediction starts from them.  After fastnn trains, they are views of the
trained :class:`~fastnn.network.Network`'s flat buffer, so that the next call
finds that network again (:func:`network_of`) without copying; weights a user
assigns instead (scikit-learn's own tests do) are copied into a new network.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from ..layers import Layout
from ..network import Network
from ..optimizers import make_optimizer


def glorot_init(layer_units, activation: str, dtype, rng) -> tuple[list, list]:
    """scikit-learn's initialisation, draw for draw: for each layer, weights then biases from
    ``rng.uniform(-b, b)`` with Glorot's ``b = sqrt(6 / (fan_in + fan_out))`` (``2``
    instead of ``6`` for ``logistic``), so a ``random_state`` starts where scikit-learn's does."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in pairwise(layer_units):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
        intercepts.append(rng.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
    return coefs, intercepts


def network_of(est) -> Network:
    """The network ``est.coefs_``/``intercepts_`` describe, with ``est``'s activation and head.

    The cached network when ``coefs_`` are still its views (and nothing else changed), else a
    new one holding copies, in the coefs' dtype (float64 unless they are float32)."""
    net = getattr(est, "_net", None)
    dtype = np.dtype(np.float32 if np.asarray(est.coefs_[0]).dtype == np.float32 else np.float64)
    if (
        net is not None
        and net.activation == est.activation
        and net.head == est.out_activation_
        and net.dtype == dtype
        and len(net.coefs) == len(est.coefs_) == len(est.intercepts_)
        and all(a is b for a, b in zip(net.coefs + net.intercepts, list(est.coefs_) + list(est.intercepts_)))
    ):
        return net
    net = Network(est.coefs_, est.intercepts_, est.activation, est.out_activation_, dtype=dtype)
    adopt(est, net)
    return net


def adopt(est, net: Network) -> None:
    """Make ``net`` the estimator's model: ``coefs_``/``intercepts_`` become its views."""
    est._net = net
    est.coefs_ = list(net.coefs)
    est.intercepts_ = list(net.intercepts)


class SolverState:
    """What a stochastic solver carries from one epoch, and one ``partial_fit``, to the next.

    ``optimizer`` is fastnn's rule (:mod:`fastnn.optimizers`) with its step
    count and buffers; ``learning_rate`` the current base rate (``sgd``'s
    ``invscaling`` and ``adaptive`` schedules change it at the end of an
    epoch, as scikit-learn's optimizer does); ``epoch`` counts the epochs this
    state has trained (fastnn's per-step schedules run over ``max_iter`` of
    them).  Pickles as plain arrays.
    """

    def __init__(self, name: str, layout: Layout, learning_rate: float, hyper: dict):
        self.name, self.layout, self.hyper = name, layout, dict(hyper)
        self.learning_rate = float(learning_rate)
        self.epoch = 0
        self.optimizer = make_optimizer(name, layout, **self.hyper)

    def __getstate__(self) -> dict:
        return {
            "name": self.name,
            "sizes": self.layout.sizes,
            "dtype": self.layout.dtype.str,
            "hyper": self.hyper,
            "learning_rate": self.learning_rate,
            "epoch": self.epoch,
            "arrays": self.optimizer.state_arrays(),
        }

    def __setstate__(self, state: dict) -> None:
        # The optimizer's buffers are views of flat arrays: rebuilt, not unpickled as copies.
        SolverState.__init__(
            self, state["name"], Layout(state["sizes"], state["dtype"]), state["learning_rate"], state["hyper"]
        )
        self.epoch = state["epoch"]
        self.optimizer.load_state(state["arrays"])
