#!/usr/bin/env python
"""Load on ``fastnn serve``'s ``POST /api/predict`` over loopback: requests/s, p50/p99 latency, and
whether every request got a JSON answer.

    python benchmarks/serve_load.py [--model runs/latest/model.npz] [--clients 1,64,256]
        [--requests 30] [--min-total 1000] [--burst 300] [--rounds 1] [--url http://127.0.0.1:PORT/]
        [--check] [--json FILE]

Starts ``fastnn serve MODEL --port 0`` in a fresh process (or uses ``--url``,
which must be a loopback address), then for each count C in ``--clients``
opens C keep-alive connections at once, each sending ``--requests``
requests one after another (a drawn digit's 784 pixels, as the page sends
them; more when C x ``--requests`` is under ``--min-total``, so that one
client's figures rest on enough requests too), and reports requests/s over the whole run and the median and 99th
percentile latency (send to last byte), and the mean number of images in
the forward pass that answered a request (the server's ``X-Batch-Size``
header: the micro-batching at work).  ``--burst N`` adds N clients that
each open a new connection and send one request, all at once.  ``--rounds``
repeats the whole set (a fresh server each round).  Without ``--model`` the
network is a freshly initialised 784-256-10 (what ``fastnn train`` trains by
default; the weights do not change the cost).

Every answer is classified: 200 with a JSON body, a JSON 503 carrying
``Retry-After`` (the server's queue is full), anything else (not JSON, another
status) and *lost* (the connection closed or timed out before an answer).
``--check`` exits 1 if any answer was not JSON or any request was lost.

Bounded: at most 20,000 requests per load, 30 s per request, ``--max-seconds``
(default 120) per load; loopback only.  The client shares the machine with the
server (it takes a share of the cores too): report the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUESTS = 20_000
REQUEST_TIMEOUT = 30.0


def digit_body() -> bytes:
    """The JSON body of a drawn ring-shaped digit: 784 ints 0-255, row-major 28x28."""
    pixels = []
    for r in range(28):
        for c in range(28):
            d = ((r - 14) / 9) ** 2 + ((c - 14) / 6) ** 2
            pixels.append(255 if 0.6 < d < 1.1 else 0)
    return json.dumps({"pixels": pixels}).encode()


def request_bytes(host: str, port: int, body: bytes) -> bytes:
    return (
        f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response: (status, headers in lower case, body); raises on a closed connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def classify(status: int, headers: dict, body: bytes) -> str:
    """``ok``, ``busy`` (a JSON 503 with Retry-After) or ``bad`` (anything else)."""
    try:
        json.loads(body)
        is_json = headers.get("content-type", "").startswith("application/json")
    except ValueError:
        is_json = False
    if status == 200 and is_json:
        return "ok"
    if status == 503 and is_json and "retry-after" in headers:
        return "busy"
    return "bad"


class Tally:
    def __init__(self):
        self.latencies: list[float] = []  # seconds, answered requests
        self.counts = {"ok": 0, "busy": 0, "bad": 0, "lost": 0}
        self.batches: list[int] = []  # images in the forward pass of each answered prediction
        self.bad_examples: list[str] = []

    def add(self, kind: str, latency: float | None = None, example: str = "") -> None:
        self.counts[kind] += 1
        if latency is not None:
            self.latencies.append(latency)
        if kind in ("bad", "lost") and len(self.bad_examples) < 5:
            self.bad_examples.append(example)


async def client(host: str, port: int, payload: bytes, n: int, tally: Tally, deadline: float) -> None:
    """One connection sending ``n`` requests in turn (a new connection if the server closed it)."""
    reader = writer = None
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                tally.add("lost", example="the load's time limit ran out")
                continue
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), REQUEST_TIMEOUT)
                writer.write(payload)
                status, headers, body = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                asyncio.TimeoutError,
                ValueError,
                IndexError,
            ) as exc:
                tally.add("lost", example=f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            kind = classify(status, headers, body)
            tally.add(kind, time.perf_counter() - t0, f"{status} {headers.get('content-type')}: {body[:80]!r}")
            if "x-batch-size" in headers:
                tally.batches.append(int(headers["x-batch-size"]))
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def load(host: str, port: int, clients: int, requests: int, max_seconds: float) -> dict:
    """``clients`` connections at once, ``requests`` each; the figures of the run."""
    if clients * requests > MAX_REQUESTS:
        raise SystemExit(f"at most {MAX_REQUESTS} requests per load, asked for {clients * requests}")
    payload = request_bytes(host, port, digit_body())
    tally = Tally()
    deadline = time.monotonic() + max_seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(client(host, port, payload, requests, tally, deadline) for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = sorted(tally.latencies)

    def pct(q):
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

    return {
        "clients": clients,
        "requests": clients * requests,
        **tally.counts,
        "wall_s": wall,
        "requests_per_s": tally.counts["ok"] / wall,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": 1000 * statistics.fmean(lat) if lat else None,
        "mean_batch": statistics.fmean(tally.batches) if tally.batches else None,
        "examples": tally.bad_examples,
    }


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    """``fastnn serve MODEL --port 0`` in a fresh process; returns it and its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastnn", "serve", str(model), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"fastnn serve did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(1)


def loopback(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"--url must be a loopback address (127.0.0.0/8, ::1, localhost), not {host!r}")
    return host, parts.port or 80


def default_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from fastnn.modelfile import save_network
    from fastnn.network import init_network

    return save_network(init_network(784, 256, 10, seed=0), folder / "model.npz")


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model or 'unknown CPU'}, {os.cpu_count()} CPUs, load average {load1:.2f}"


def show(row: dict, label: str) -> str:
    def ms(v):
        return "-" if v is None else f"{v:.1f}"

    batch = "-" if row["mean_batch"] is None else f"{row['mean_batch']:.1f}"
    return (
        f"{label:>12}  {row['requests']:>6}  {row['requests_per_s']:>8.0f}  {ms(row['p50_ms']):>7}  "
        f"{ms(row['p99_ms']):>7}  {batch:>6}  {row['ok']:>6}  {row['busy']:>5}  {row['bad']:>4}  "
        f"{row['lost']:>4}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="model file (default: a fresh 784-256-10)")
    p.add_argument("--url", default=None, help="a running fastnn serve on loopback (default: start one)")
    p.add_argument("--clients", default="1,64,256", help="concurrent keep-alive clients, comma-separated")
    p.add_argument("--requests", type=int, default=30, help="requests per client (default %(default)s)")
    p.add_argument(
        "--min-total",
        type=int,
        default=1000,
        help="at least this many requests per load, shared by its clients (default %(default)s)",
    )
    p.add_argument("--burst", type=int, default=0, help="also N new connections at once, one request each")
    p.add_argument("--rounds", type=int, default=1, help="repeat everything, a fresh server each round")
    p.add_argument("--max-seconds", type=float, default=120, help="time limit of each load")
    p.add_argument("--check", action="store_true", help="exit 1 on any non-JSON answer or lost request")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = p.parse_args()
    counts = [int(c) for c in args.clients.split(",") if c.strip()]

    print(f"# {machine()}")
    print(
        f"{'clients':>12}  {'reqs':>6}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'batch':>6}  {'200':>6}  "
        f"{'503':>5}  {'bad':>4}  {'lost':>4}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp))
        for round_ in range(args.rounds):
            proc = None
            if args.url is None:
                proc, url = start_server(model)
            else:
                url = args.url
            try:
                host, port = loopback(url)
                plan = []
                for c in counts:
                    each = max(args.requests, -(-args.min_total // c))
                    plan.append((c, each, f"{c} x {each}"))
                if args.burst:
                    plan.append((args.burst, 1, f"burst {args.burst}"))
                for clients, requests, label in plan:
                    row = asyncio.run(load(host, port, clients, requests, args.max_seconds))
                    row.update(round=round_ + 1, label=label)
                    rows.append(row)
                    print(show(row, label), flush=True)
                    for example in row["examples"]:
                        print(f"{'':>12}  e.g. {example}")
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.communicate(timeout=30)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine(), "loads": rows}, indent=2) + "\n")
    failed = sum(r["bad"] + r["lost"] for r in rows)
    if args.check and failed:
        print(f"FAILED: {failed} requests without a JSON answer", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
