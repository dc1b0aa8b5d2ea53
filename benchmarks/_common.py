"""Constants and helpers shared by the benchmark modules (fixtures live in conftest.py)."""

from __future__ import annotations

import math
import os
import time

import numpy as np

from fastnn.activations import make_targets
from fastnn.augment import AugmentSpec
from fastnn.network import init_network
from fastnn.optimizers import make_optimizer

D, C = 784, 10  # MNIST-shaped inputs and classes
N_TRAIN, N_TEST = 60000, 10000
BATCHES = (32, 128, 512, 2048)
WIDTHS = (64, 128, 800)  # one hidden layer: how each kernel scales with the width
DEEP = ((100, 100), (1000, 500))  # two hidden layers (issue 17): timed at DEEP_BATCH only
DEEP_BATCH = 128
LR = 0.1
CHUNK_BATCHES = 50  # batches per train_steps call in the "train_chunk" benchmarks ...
CHUNK_MAX_SAMPLES = 25600  # ... but at most this many samples (b2048: 12 batches), to keep it short
MIN_ROUND_SECONDS = 2e-4  # calls shorter than this are looped inside a timed round

#: The augmentations timed: the ranges of fastnn's defaults (the ``max`` preset's).
AUGMENT_SPECS = {
    "affine": AugmentSpec("affine", rotation=10, scale=0.1, shear=0.2, shift=1.5),
    "elastic": AugmentSpec("elastic", rotation=10, scale=0.1, shear=0.2, shift=1.5, alpha=34, sigma=4),
}

#: (batch, hidden layers) of the per-step benchmarks: every batch size by every width of one
#: hidden layer, and the deep shapes at their one batch size.
STEP_CASES = [(batch, (width,)) for batch in BATCHES for width in WIDTHS] + [(DEEP_BATCH, hidden) for hidden in DEEP]


def shape(hidden) -> str:
    """``784-100-100-10``: the network's layer sizes, as groups and tables name it."""
    return "-".join(map(str, (D, *hidden, C)))


def case_id(case) -> str:
    """pytest id of a :data:`STEP_CASES` entry: ``b128-784-100-100-10``."""
    batch, hidden = case
    return f"b{batch}-{shape(hidden)}"


def make_net(hidden, seed: int = 0):
    """A He-initialised ReLU/softmax network of ``hidden`` layers (``fastnn.init_network``)."""
    return init_network(D, hidden, C, seed)


def softmax_targets(y):
    """What the softmax head trains against for the labels ``y``."""
    return make_targets("softmax", y, C)


def sgd(net):
    """Plain SGD for ``net``: the optimizer of every benchmark that does not vary it."""
    return make_optimizer("sgd", net.layout)


def warm_up(bk) -> None:
    """Call every kernel once on tiny arrays: numba compiles (or loads its cache) here, untimed.

    Numba compiles per argument *type*, not shape or depth (a network is one flat
    buffer and a table of offsets), so this covers every benchmark shape as long as
    the benchmarks pass float32 C-contiguous arrays; both first-layer paths are
    runtime branches of the same compiled functions, but each is run once here anyway.
    """
    rng = np.random.default_rng(0)
    n, m = 64, 16
    net = make_net((8, 8))
    perm = np.empty(n, np.int64)
    bk.permutation(n, 0, 0, perm)
    targets = softmax_targets(rng.integers(0, C, n))
    for density in (1.0, 0.1):  # the dense and the sparse first layer
        X = rng.random((n, D), dtype=np.float32)
        X[rng.random((n, D)) >= density] = 0.0
        ws = bk.make_workspace(net, m)
        Xb = np.empty((m, D), np.float32)
        bk.gather(X, perm[:m], Xb)
        bk.forward(net, Xb, ws)
        bk.loss(net.head, ws.activations(m)[-1], targets.take(perm[:m]), ws.deltas(m)[-1])
        bk.backward(net, Xb, ws)
        bk.update(net.params, ws.grads, sgd(net), 0.01)
        bk.train_steps(net, X, targets, perm, 0, n, m, np.full(n // m, 0.01), sgd(net), ws)
    bk.predict(net, X, np.empty((n, C), np.float32))
    bk.augment(X, 0, 0, AUGMENT_SPECS["elastic"], np.empty_like(X))


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


class Runner:
    """Times one kernel call in ``benchmark.pedantic`` rounds and records its throughput."""

    def __init__(self, benchmark, budget: float, min_rounds: int, max_rounds: int):
        self.benchmark = benchmark
        self.budget = budget
        self.min_rounds = min_rounds
        self.max_rounds = max(min_rounds, max_rounds)

    def __call__(self, fn, *args, group: str, samples: int, steps: int = 1, unit: str = "samples", **info):
        """Benchmark ``fn(*args)``; one call processes ``samples`` rows in ``steps`` steps.

        ``extra_info`` gets ``<unit>_per_s`` and ``us_per_step`` (from the median
        call time) plus ``info``.  Returns ``fn``'s result (of the last call).
        """
        bench = self.benchmark
        bench.group = group
        bench.extra_info.update(info)
        bench.extra_info.update(samples_per_call=samples, steps_per_call=steps)
        if bench.disabled:  # smoke test (--benchmark-disable): the body runs once, untimed
            return bench(fn, *args)
        t0 = time.perf_counter()
        fn(*args)  # warm-up: caches, page faults; numba's compilation happened in the fixture
        once = max(time.perf_counter() - t0, 1e-7)
        iterations = max(1, math.ceil(MIN_ROUND_SECONDS / once))
        rounds = int(min(self.max_rounds, max(self.min_rounds, self.budget / (once * iterations))))
        result = bench.pedantic(fn, args=args, rounds=rounds, iterations=iterations)
        median = bench.stats.stats.median
        bench.extra_info["load_1min_after"] = (load_average() or [None])[0]
        bench.extra_info[f"{unit}_per_s"] = round(samples / median, 1)
        bench.extra_info["us_per_step"] = round(median / steps * 1e6, 3)
        return result
