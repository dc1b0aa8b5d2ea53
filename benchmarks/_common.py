"""Constants and helpers shared by the benchmark modules (fixtures live in conftest.py)."""

from __future__ import annotations

import math
import os
import time

import numpy as np

D, C = 784, 10            # MNIST-shaped inputs and classes
N_TRAIN, N_TEST = 60000, 10000
BATCHES = (32, 128, 512, 2048)
HIDDENS = (64, 128, 800)
LR = 0.1
CHUNK_BATCHES = 50        # batches per train_steps call in the "train_chunk" benchmarks ...
CHUNK_MAX_SAMPLES = 25600  # ... but at most this many samples (b2048: 12 batches), to keep it short
MIN_ROUND_SECONDS = 2e-4  # calls shorter than this are looped inside a timed round


def make_params(hidden: int, seed: int = 0):
    """He-initialised parameters, as ``fastnn.model.init_network``: W1, b1, W2, b2."""
    from fastnn.model import init_network

    net = init_network(D, hidden, C, seed)
    return net.W1, net.b1, net.W2, net.b2


def warm_up(bk) -> None:
    """Call every kernel once on tiny arrays: numba compiles (or loads its cache) here, untimed.

    Numba compiles per argument *type*, not shape, so this covers every benchmark
    shape as long as the benchmarks pass the same dtypes and layouts.
    """
    rng = np.random.default_rng(0)
    n, m, h = 64, 16, 8
    X = rng.random((n, D), dtype=np.float32)
    y = rng.integers(0, C, n).astype(np.int64)
    perm = np.empty(n, np.int64)
    bk.permutation(n, 0, 0, perm)
    W1, b1, W2, b2 = make_params(h)
    ws = bk.make_workspace(m, D, h, C)
    Xb, yb = np.empty((m, D), np.float32), np.empty(m, np.int64)
    A1, dA1 = np.empty((m, h), np.float32), np.empty((m, h), np.float32)
    logits, dlogits = np.empty((m, C), np.float32), np.empty((m, C), np.float32)
    dW1, db1 = np.empty_like(W1), np.empty_like(b1)
    dW2, db2 = np.empty_like(W2), np.empty_like(b2)
    bk.gather(X, y, perm[:m], Xb, yb)
    bk.forward(Xb, W1, b1, W2, b2, A1, logits)
    bk.softmax_xent(logits, yb, dlogits)
    bk.backward(Xb, A1, W2, dlogits, dW1, db1, dW2, db2, dA1)
    bk.update(W1, b1, W2, b2, dW1, db1, dW2, db2, 0.01)
    bk.train_steps(X, y, perm, 0, n, m, 0.01, W1, b1, W2, b2, ws)
    bk.predict_logits(X, W1, b1, W2, b2, np.empty((n, C), np.float32))


class Runner:
    """Times one kernel call in ``benchmark.pedantic`` rounds and records its throughput."""

    def __init__(self, benchmark, budget: float, min_rounds: int, max_rounds: int):
        self.benchmark = benchmark
        self.budget = budget
        self.min_rounds = min_rounds
        self.max_rounds = max(min_rounds, max_rounds)

    def __call__(self, fn, *args, group: str, samples: int, steps: int = 1,
                 unit: str = "samples", **info):
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
        try:
            bench.extra_info["load_1min_after"] = round(os.getloadavg()[0], 2)
        except OSError:
            pass
        bench.extra_info[f"{unit}_per_s"] = round(samples / median, 1)
        bench.extra_info["us_per_step"] = round(median / steps * 1e6, 3)
        return result
