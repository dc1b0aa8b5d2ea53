"""The web application of ``fastnn serve``: the drawing page and its JSON API (Starlette).

Routes:

* ``GET /`` (and ``/app.js``, ``/style.css``): the drawing page, from this
  package's ``static/`` folder; no asset comes from the internet.
* ``POST /api/predict``: a body described in :mod:`fastnn.serve.requests`;
  answers ``{"label", "name", "probabilities", "pixels"}``, ``pixels`` being
  the 784 values 0-255 (row-major 28x28) the network saw; its ``X-Batch-Size``
  header says how many images shared the forward pass.
* ``GET /api/model``: the model's shape, classes and, when its file records
  them, dataset, training config and accuracy.

Every refused request is a 4xx with ``{"error": "..."}``; an unexpected
failure is a 500 with the same shape and no traceback (the traceback goes to
the server's log), and the server keeps serving.

Under load, predictions queue up to the bounds of :mod:`fastnn.serve.admission`
(past them: a JSON 503 with ``Retry-After``), and the images of concurrent
requests share forward passes (:mod:`fastnn.serve.batching`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from ..pixels import N_PIXELS
from .admission import RETRY_AFTER, Admission
from .batching import MAX_BATCH, SERVE_BACKEND, Batcher
from .requests import BODY_SECONDS, MAX_BODY_BYTES, RequestError, image_from_payload, parse_json

log = logging.getLogger("fastnn.serve")

#: Requests decoded at the same time (images are decoded in worker threads); more wait their turn.
DECODE_SLOTS = 2

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def model_info(net, metadata: dict, path: str | Path | None = None) -> dict:
    """What ``GET /api/model`` answers: shape, classes, and what the model file records of its training.

    The shape is the network's own: ``sizes`` (inputs first) and ``hidden`` as lists,
    ``activation``, ``head``, ``dtype``; ``shape`` is ``sizes`` again, the name the page reads.
    """
    from ..modelfile import network_summary

    summary = network_summary(net)
    info = {
        "file": Path(path).name if path is not None else None,
        "shape": summary["sizes"],
        **summary,
        "n_features": net.n_features,
        "n_classes": net.n_classes,
        "classes": np.asarray(net.classes).tolist(),
        "class_names": list(net.class_names),
    }
    for key in ("dataset", "backend", "config", "accuracy"):
        if key in metadata:
            info[key] = metadata[key]
    return info


def answer(net, image: np.ndarray, probs: np.ndarray) -> dict:
    """The answer for one 28x28 float32 image in [0, 1] and its class probabilities."""
    k = int(probs.argmax())
    return {
        "label": np.asarray(net.classes)[k].item(),
        "name": str(net.class_names[k]),
        "probabilities": [float(p) for p in probs],
        "pixels": np.rint(image.reshape(N_PIXELS) * 255).astype(int).tolist(),
    }


def create_app(
    net,
    metadata: dict | None = None,
    *,
    model_path=None,
    allowed_hosts=None,
    backend: str = SERVE_BACKEND,
    admission: Admission | None = None,
    max_batch: int = MAX_BATCH,
    body_seconds: float = BODY_SECONDS,
):
    """The Starlette application serving ``net`` (a 784-feature :class:`fastnn.Network`).

    ``allowed_hosts``: the ``Host`` headers accepted (``None``: any).  ``fastnn
    serve`` on a loopback address accepts only local names, so a web page
    elsewhere cannot reach the server through DNS rebinding.  ``backend`` runs
    the forward passes, of at most ``max_batch`` images (1: no batching);
    ``admission`` bounds the work held at once (default
    :mod:`fastnn.serve.admission`'s bounds), and an admitted request's body must
    arrive within ``body_seconds`` (else a JSON 408), so a slow client cannot keep
    its place in that bound.  The app's ``state.batcher`` and
    ``state.admission`` show the batching and the queue at work.
    """
    import anyio
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    if net.n_features != N_PIXELS:
        raise ValueError(f"the page draws 28x28 images; this model takes {net.n_features} features")
    info = model_info(net, metadata or {}, model_path)
    static = {
        route: (resources.files(__package__).joinpath("static").joinpath(name).read_bytes(), kind)
        for route, (name, kind) in _STATIC.items()
    }
    limiter = anyio.CapacityLimiter(DECODE_SLOTS)
    admission = admission or Admission()
    batcher = Batcher(net, backend, max_batch)

    def error(status: int, message: str, **headers) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers={**_HEADERS, **headers})

    async def page(request):
        body, kind = static[request.url.path]
        return Response(body, media_type=kind, headers=_HEADERS)

    async def model(request):
        return JSONResponse(info, headers=_HEADERS)

    def declared_size(request) -> int:
        """The body's size as declared (the limit when it declares none), or a RequestError."""
        declared = request.headers.get("content-length")
        if declared is None:
            return MAX_BODY_BYTES
        if not declared.isdigit():
            raise RequestError(400, "invalid Content-Length header")
        if int(declared) > MAX_BODY_BYTES:
            raise RequestError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
        return int(declared)

    async def read_body(request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():  # also bounds a chunked body, which declares no length
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise RequestError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def image_of(body: bytes) -> np.ndarray:
        payload = parse_json(body)
        if isinstance(payload, dict) and "image" in payload:  # decoding takes milliseconds: off the loop
            return await anyio.to_thread.run_sync(image_from_payload, payload, limiter=limiter)
        return image_from_payload(payload)  # 784 numbers: checked in well under a millisecond

    async def predict(request):
        try:
            size = declared_size(request)
        except RequestError as exc:
            return error(exc.status, exc.message)
        if not admission.enter(size):
            return error(503, admission.refusal(), **{"Retry-After": str(RETRY_AFTER)})
        try:
            with anyio.fail_after(body_seconds):
                body = await read_body(request)
            image = await image_of(body)
            probs, batch = await batcher.probabilities(image.reshape(N_PIXELS))
        except RequestError as exc:
            return error(exc.status, exc.message)
        except TimeoutError:
            # the rest of the body may still come: the connection cannot carry another request
            return error(408, f"the request body did not arrive within {body_seconds:g} s", Connection="close")
        except MemoryError:
            return error(503, "the server is out of memory for this request; try a smaller image")
        finally:
            admission.leave(size)
        return JSONResponse(answer(net, image, probs), headers={**_HEADERS, "X-Batch-Size": str(batch)})

    async def http_error(request, exc):
        return error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "request refused")

    async def server_error(request, exc):
        log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error (logged by the server)")

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    routes = [Route(path, page, methods=["GET"]) for path in static]
    routes += [Route("/api/model", model, methods=["GET"]), Route("/api/predict", predict, methods=["POST"])]
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error, Exception: server_error}
    )
    app.state.batcher = batcher
    app.state.admission = admission
    return app
