#!/usr/bin/env python
"""One forward pass of ``fastnn serve``'s batches: ``net.predict_proba(X, backend)`` by batch size,
backend and thread count (what ``fastnn.serve.batching`` chose its backend and threads by).

    python benchmarks/serve_forward.py [--hidden 256] [--batches 1,8,64,256] [--threads 1,2] [--repeat 200]

For each backend (numpy: BLAS sgemm; numba: its compiled kernels), thread count
(BLAS's for numpy, numba's for numba) and batch size, prints the best and the
median of ``--repeat`` calls in microseconds per batch, and the best per image,
on a freshly initialised 784-H-10 network and MNIST-like inputs (19% of pixels
lit).  The best is the machine's speed; the median is what a server gets on a
shared machine, where a multi-threaded pass waits for its slowest thread at
every barrier.  Run it on an idle machine and under load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batches", default="1,8,64,256")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=200)
    args = p.parse_args()

    import numba
    import numpy as np
    from threadpoolctl import ThreadpoolController

    from fastnn.network import init_network

    net = init_network(784, args.hidden, 10, seed=0)
    rng = np.random.default_rng(0)
    blas = ThreadpoolController()
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, 784-{args.hidden}-10")
    print(f"{'backend':>8} {'threads':>7} {'batch':>6} {'best us':>9} {'median us':>10} {'us/image':>9}")
    for backend in ("numpy", "numba"):
        for threads in (int(t) for t in args.threads.split(",")):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            with blas.limit(limits=threads, user_api="blas"):
                for b in (int(b) for b in args.batches.split(",")):
                    X = (rng.random((b, 784)) < 0.19).astype(np.float32)
                    net.predict_proba(X, backend)  # compile or load the kernels, warm the caches
                    times = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        net.predict_proba(X, backend)
                        times.append(time.perf_counter() - t0)
                    best, median = min(times), statistics.median(times)
                    print(
                        f"{backend:>8} {threads:>7} {b:>6} {best * 1e6:>9.0f} {median * 1e6:>10.0f} "
                        f"{best / b * 1e6:>9.1f}"
                    )


if __name__ == "__main__":
    main()
