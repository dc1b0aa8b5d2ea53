"""Micro-batching: the images of concurrent ``/api/predict`` requests go through the network together.

A request hands its image to :meth:`Batcher.probabilities` and waits.  One task
takes everything waiting (up to :data:`MAX_BATCH` images) and runs one forward
pass, ``net.predict_proba(X, backend)`` on the stacked batch, in a worker
thread; the requests that arrive meanwhile form the next batch.  No request
waits for a batch to fill: alone, a request is a batch of one, at once; under
load the batches grow by themselves, and with them the throughput, since a
forward pass of 256 images costs about 25 times one of a single image, not 256.

The network is used only through its public ``predict_proba``, so any network
that has one is served the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import numpy as np

#: Images in one forward pass at most (the rest wait for the next pass).
MAX_BATCH = 256
#: The backend of the server's forward passes.  Measured on the 2-core machines: one-thread
#: NumPy (BLAS sgemm) is faster than numba's kernels at every batch size from 1 to 256
#: (46 us against 185 us for one image, 1.2 ms against 1.3 ms for 256); numba's edge is
#: training's sparse path.
SERVE_BACKEND = "numpy"


class Batcher:
    """Concurrent predictions with ``net``, batched into shared forward passes (see the module)."""

    def __init__(self, net, backend: str = SERVE_BACKEND, max_batch: int = MAX_BATCH):
        self.net = net
        self.backend = backend
        self.max_batch = max_batch
        # One thread: a forward pass runs beside the event loop (which parses the next requests),
        # never beside another forward pass.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="fastnn-forward", initializer=self._one_numba_thread if backend == "numba" else None
        )
        self._blas: Any = None  # a threadpoolctl ThreadpoolController, made on the first pass
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list = []
        self._wake = asyncio.Event()  # made again on each event loop the batcher starts on
        self._task: asyncio.Task | None = None
        self.passes = 0  # forward passes run, and images in them: the batching at work
        self.images = 0
        # The forward thread started, its kernels loaded (or compiled), before the first request.
        self._executor.submit(self.probabilities_sync, np.zeros((1, net.n_features), np.float32)).result()

    async def probabilities(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """The class probabilities of one image (``(n_features,)`` float32 in [0, 1]), and how many
        images shared the forward pass that computed them."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        future = loop.create_future()
        self._waiting.append((image, future))
        self._wake.set()
        return await future

    def probabilities_sync(self, X: np.ndarray) -> np.ndarray:
        """One forward pass over ``X (n, n_features)``, on one thread (no barrier waits: a thread
        pool waits for its slowest thread, and on a shared machine some thread is often descheduled)."""
        if self._blas is None:
            from threadpoolctl import ThreadpoolController

            self._blas = ThreadpoolController()
        with self._blas.limit(limits=1, user_api="blas"):
            return self.net.predict_proba(X, self.backend)

    def close(self) -> None:
        """Stop the forward thread (pending requests get an error)."""
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- inside ---------------------------------------------------------------------------

    @staticmethod
    def _one_numba_thread() -> None:
        try:
            import numba

            numba.set_num_threads(1)  # per thread: this one only
        except ImportError:  # pragma: no cover - numba is a dependency
            pass

    def _start(self, loop) -> None:
        """The batching task on this event loop (a test client may run each request on a new one)."""
        self._loop = loop
        self._waiting = [(image, f) for image, f in self._waiting if not f.done()]
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = [(image, f) for image, f in self._waiting[: self.max_batch] if not f.done()]
                del self._waiting[: self.max_batch]
                if not batch:
                    continue  # every client of these went away
                X = np.stack([image for image, _ in batch])
                try:
                    P = await loop.run_in_executor(self._executor, self.probabilities_sync, X)
                except Exception as exc:  # handed to each request, which reports it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.passes += 1
                self.images += len(batch)
                for (_, future), p in zip(batch, P):
                    if not future.done():
                        future.set_result((p, len(batch)))
