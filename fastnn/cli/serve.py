"""``fastnn serve MODEL``: a local web page to draw a digit and watch the network predict it live.

Also ``python scripts/serve.py MODEL [--host 127.0.0.1] [--port 8000]``.

Opens ``http://HOST:PORT/``: a drawing pad (mouse, pen or touch), the
predicted digit with a bar per class, and the 28x28 image the network
actually sees.  The page's JSON API is ``POST /api/predict`` (``{"pixels":
[784 numbers 0-255]}`` or ``{"image": "data:image/png;base64,..."}``) and
``GET /api/model``.  It binds to 127.0.0.1 (this machine only) unless
``--host`` says otherwise; ``--port 0`` picks a free port.  The page works
offline.  A model that cannot be loaded, or that does not take 28x28 images,
is one ``error: ...`` line and exit status 2; so is a port already in use.
Under load, predictions queue up to ``--queue`` requests (past that: a JSON
503 with ``Retry-After``) and concurrent ones share forward passes; see
:mod:`fastnn.serve.admission` and :mod:`fastnn.serve.batching`.
Needs the ``serve`` extra (``pip install -e ".[serve]"``): Starlette, uvicorn, httptools.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys

from ..errors import FastnnError
from ..serve.admission import MAX_PENDING
from ..serve.batching import MAX_BATCH

HELP = "serve a web page to draw digits and see the model's live prediction"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
#: Connections waiting to be accepted (a burst of new clients queues here, not refused).
BACKLOG = 2048
#: Open connections (with their requests) past which uvicorn itself answers a plain-text 503;
#: far above the app's own bound (fastnn.serve.admission), which answers in JSON.
MAX_CONNECTIONS = 4096


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn serve``."""
    p.add_argument("model", help="model file written by fastnn train (e.g. runs/latest/model.npz)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default %(default)s: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s; 0 picks a free one)")
    p.add_argument(
        "--queue",
        type=int,
        default=MAX_PENDING,
        help="predictions held at once, queued or being answered; past it a request gets a JSON "
        "503 with Retry-After (default %(default)s)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=MAX_BATCH,
        help="most images in one forward pass; concurrent requests share it "
        "(default %(default)s; 1 turns the batching off)",
    )


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a FastnnError saying why not (port taken, unknown host)."""
    if not 0 <= port <= 65535:
        raise FastnnError(f"--port must be between 0 and 65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise FastnnError(f"cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise FastnnError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(args: argparse.Namespace) -> None:
    """``fastnn serve``: load the model, bind, print the address and serve until Ctrl-C."""
    from ..serve import load_model

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise FastnnError(
            f'fastnn serve needs Starlette and uvicorn ({exc.name} is missing): pip install -e ".[serve]"'
        ) from None
    from ..serve import create_app
    from ..serve.admission import Admission

    for name, value in (("--queue", args.queue), ("--max-batch", args.max_batch)):
        if value < 1:
            raise FastnnError(f"{name} must be a positive number, got {value}")
    net, meta = load_model(args.model)
    app = create_app(
        net,
        meta,
        model_path=args.model,
        allowed_hosts=("127.0.0.1", "localhost") if args.host in LOCAL_HOSTS else None,
        admission=Admission(max_pending=args.queue),
        max_batch=args.max_batch,
    )
    sock = _bind(args.host, args.port)
    url = _url(args.host, sock)
    print(f"fastnn serve: {url}  (model {args.model}, {net.describe()}; Ctrl-C to stop)", flush=True)
    if args.host not in LOCAL_HOSTS:
        print(f"fastnn serve: listening on {args.host}: reachable from other machines", file=sys.stderr, flush=True)
    _allow_open_files(MAX_CONNECTIONS + 64)
    # uvicorn counts a connection and its request's task each against limit_concurrency.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        limit_concurrency=2 * MAX_CONNECTIONS,
        backlog=BACKLOG,
        timeout_keep_alive=5,
        lifespan="off",
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.batcher.close()


def _allow_open_files(wanted: int) -> None:
    """Raise this process's open-file limit towards ``wanted`` (each connection is a file), within the
    hard limit; a system that refuses keeps its limit, and connections past it wait to be accepted."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
