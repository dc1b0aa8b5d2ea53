"""The web application of ``fastnn serve``: the drawing page and its JSON API (Starlette).

Routes:

* ``GET /`` (and ``/app.js``, ``/style.css``): the drawing page, from this
  package's ``static/`` folder; no asset comes from the internet.
* ``POST /api/predict``: a body described in :mod:`fastnn.serve.requests`;
  answers ``{"label", "name", "probabilities", "pixels"}``, ``pixels`` being
  the 784 values 0-255 (row-major 28x28) the network saw.
* ``GET /api/model``: the model's shape, classes and, when its file records
  them, dataset, training config and accuracy.

Every refused request is a 4xx with ``{"error": "..."}``; an unexpected
failure is a 500 with the same shape and no traceback (the traceback goes to
the server's log), and the server keeps serving.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from ..pixels import N_PIXELS
from .requests import MAX_BODY_BYTES, RequestError, image_from_payload, parse_json

log = logging.getLogger("fastnn.serve")

#: Requests decoded at the same time (images are decoded in worker threads); more wait their turn.
DECODE_SLOTS = 2

_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/style.css": ("style.css", "text/css; charset=utf-8")}
_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"),
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
        "shape": summary["sizes"], **summary,
        "n_features": net.n_features, "n_classes": net.n_classes,
        "classes": np.asarray(net.classes).tolist(),
        "class_names": list(net.class_names),
    }
    for key in ("dataset", "backend", "config", "accuracy"):
        if key in metadata:
            info[key] = metadata[key]
    return info


def predict_one(net, image: np.ndarray) -> dict:
    """The answer for one 28x28 float32 image in [0, 1]."""
    probs = net.predict_proba(image.reshape(1, N_PIXELS))[0]
    k = int(probs.argmax())
    return {
        "label": np.asarray(net.classes)[k].item(),
        "name": str(net.class_names[k]),
        "probabilities": [float(p) for p in probs],
        "pixels": np.rint(image.reshape(N_PIXELS) * 255).astype(int).tolist(),
    }


def create_app(net, metadata: dict | None = None, *, model_path=None, allowed_hosts=None):
    """The Starlette application serving ``net`` (a 784-feature :class:`fastnn.Network`).

    ``allowed_hosts``: the ``Host`` headers accepted (``None``: any).  ``fastnn
    serve`` on a loopback address accepts only local names, so a web page
    elsewhere cannot reach the server through DNS rebinding.
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
    static = {route: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
              for route, (name, kind) in _STATIC.items()}
    limiter = anyio.CapacityLimiter(DECODE_SLOTS)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)

    async def page(request):
        body, kind = static[request.url.path]
        return Response(body, media_type=kind, headers=_HEADERS)

    async def model(request):
        return JSONResponse(info, headers=_HEADERS)

    async def read_body(request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise RequestError(400, "invalid Content-Length header")
            if int(declared) > MAX_BODY_BYTES:
                raise RequestError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():  # also bounds a chunked body, which declares no length
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise RequestError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def answer(body: bytes) -> dict:
        return predict_one(net, image_from_payload(parse_json(body)))

    async def predict(request):
        try:
            body = await read_body(request)
            result = await anyio.to_thread.run_sync(answer, body, limiter=limiter)
        except RequestError as exc:
            return error(exc.status, exc.message)
        except MemoryError:
            return error(503, "the server is out of memory for this request; try a smaller image")
        return JSONResponse(result, headers=_HEADERS)

    async def http_error(request, exc):
        return error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "request refused")

    async def server_error(request, exc):
        log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error (logged by the server)")

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    routes = [Route(path, page, methods=["GET"]) for path in static]
    routes += [Route("/api/model", model, methods=["GET"]),
               Route("/api/predict", predict, methods=["POST"])]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: http_error, Exception: server_error})
