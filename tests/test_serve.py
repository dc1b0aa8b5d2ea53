"""Tests for ``fastnn serve``'s JSON API, request rules and command line (no browser: see test_browser.py).

The API is driven in-process through Starlette's test client; one test runs
the real command in a subprocess.  Every hostile body must come back as a 4xx
with a JSON ``error`` (never a 500 or a traceback) and leave the server
answering the next request.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("starlette", reason="fastnn serve needs the serve extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")
# Recent Starlette prefers httpx2 for its test client; httpx works with every Starlette the serve extra allows.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from fastnn.cli import main as fastnn_main
from fastnn.errors import FastnnError
from fastnn.images import read_image
from fastnn.modelfile import save_network
from fastnn.network import init_network
from fastnn.predict import predict_batch
from fastnn.serve import create_app, load_model
from fastnn.serve.requests import MAX_BODY_BYTES, MAX_IMAGE_PIXELS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    net = init_network(784, 32, 10, seed=3)
    path = tmp_path_factory.mktemp("serve") / "model.npz"
    save_network(
        net,
        path,
        {"dataset": "mnist", "config": {"hidden": 32}, "backend": "numpy", "accuracy": {"dev": 0.91, "test": 0.92}},
    )
    return path


@pytest.fixture(scope="module")
def client(model_file):
    net, meta = load_model(model_file)
    with TestClient(create_app(net, meta, model_path=model_file), raise_server_exceptions=False) as c:
        yield c


def digit_pixels(seed=0) -> list[int]:
    """A 28x28 ring of ink, white on black, as 784 ints 0-255."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).ellipse((8, 5, 20, 23), outline=255, width=2)
    a = np.asarray(img, dtype=np.int64)
    a = np.clip(a - rng.integers(0, 30, a.shape) * (a > 0), 0, 255)
    return a.ravel().tolist()


def png_data_url(img: Image.Image, fmt="PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def canvas_snapshot() -> Image.Image:
    """What the page sends: a 280x280 black pad with a white stroke (a '7')."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line([(70, 60), (200, 60), (110, 230)], fill=(255, 255, 255, 255), width=22)
    return img


def assert_refused(response, status=None):
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    return body["error"]


# ---- the good paths ---------------------------------------------------------------------------


def test_page_is_served_with_its_assets_and_no_internet_url(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needle in ('<canvas id="pad"', 'id="prediction"', 'id="clear"', 'id="seen"', 'id="bars"'):
        assert needle in html
    for asset in ("/app.js", "/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and r.text
        html += r.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), (
        "the page must not load anything from the internet"
    )
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_model_endpoint_gives_shape_classes_and_recorded_accuracy(client):
    info = client.get("/api/model").json()
    assert info["shape"] == info["sizes"] == [784, 32, 10] and info["hidden"] == [32]
    assert (info["activation"], info["head"], info["dtype"]) == ("relu", "softmax", "float32")
    assert info["classes"] == list(range(10))
    assert info["class_names"] == [str(k) for k in range(10)]
    assert info["accuracy"] == {"dev": 0.91, "test": 0.92} and info["dataset"] == "mnist"
    assert info["file"] == "model.npz"


def test_model_endpoint_without_accuracy_of_a_deeper_network(tmp_path):
    save_network(init_network(784, (64, 32, 8), 10, seed=0, activation="tanh"), tmp_path / "m.npz")
    with TestClient(create_app(*load_model(tmp_path / "m.npz"))) as c:
        info = c.get("/api/model").json()
    assert "accuracy" not in info and info["shape"] == info["sizes"] == [784, 64, 32, 8, 10]
    assert info["hidden"] == [64, 32, 8] and info["activation"] == "tanh"


def test_predict_pixels_equals_fastnn_predict_on_the_same_pixels(client, model_file, tmp_path, capsys):
    batch = np.array([digit_pixels(seed) for seed in range(5)], dtype=np.uint8)
    np.save(tmp_path / "batch.npy", batch)
    assert (
        fastnn_main(["predict", str(model_file), str(tmp_path / "batch.npy"), "--out", str(tmp_path / "sub.csv")]) == 0
    )
    cli_labels = [int(line.split(",")[1]) for line in (tmp_path / "sub.csv").read_text().split()[1:]]
    net, _ = load_model(model_file)
    _, probs = predict_batch(net, batch)
    for k, pixels in enumerate(batch.tolist()):
        r = client.post("/api/predict", json={"pixels": pixels})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) >= {"label", "probabilities", "pixels"}
        assert body["label"] == cli_labels[k] and isinstance(body["label"], int)
        assert body["pixels"] == pixels  # it saw exactly what it was sent
        assert np.allclose(body["probabilities"], probs[k], atol=1e-6)
        assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-5


def test_predict_pixels_float_values_follow_the_pixel_rule(client):
    ints = digit_pixels(1)
    a = client.post("/api/predict", json={"pixels": ints}).json()
    b = client.post("/api/predict", json={"pixels": [float(v) for v in ints]}).json()
    c = client.post("/api/predict", json={"pixels": [v / 255 for v in ints]}).json()
    assert a["label"] == b["label"] == c["label"]
    assert np.allclose(a["probabilities"], c["probabilities"], atol=1e-6)


def test_predict_image_is_made_mnist_style_like_fastnn_predict(client, model_file, tmp_path):
    snapshot = canvas_snapshot()
    snapshot.save(tmp_path / "drawn.png")
    seen = read_image(tmp_path / "drawn.png")  # what fastnn predict makes of the same file
    body = client.post("/api/predict", json={"image": png_data_url(snapshot)}).json()
    assert body["pixels"] == np.rint(seen.ravel() * 255).astype(int).tolist()
    net, _ = load_model(model_file)
    probs = net.predict_proba(seen.reshape(1, 784))[0]
    assert body["label"] == int(net.classes[int(probs.argmax())])
    assert np.allclose(body["probabilities"], probs, atol=1e-6)
    # dark ink on white paper, as JPEG: inverted, same pipeline
    paper = Image.new("L", (200, 150), 250)
    ImageDraw.Draw(paper).line([(60, 20), (140, 20), (80, 130)], fill=10, width=12)
    r = client.post("/api/predict", json={"image": png_data_url(paper, "JPEG")})
    assert r.status_code == 200 and len(r.json()["pixels"]) == 784


# ---- bad requests: each a 4xx with a JSON error, never a 500 --------------------------------------


def raw(client, body: bytes, **headers):
    return client.post("/api/predict", content=body, headers={"content-type": "application/json", **headers})


@pytest.mark.parametrize(
    "body,why",
    [
        (b"", "Expecting value"),
        (b"not json", "not valid JSON"),
        (b'{"pixels": [1, 2,', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"null", "JSON object"),
        (b'{"pixels": [NaN]}', "NaN"),
        (b'{"pixels": [Infinity]}', "Infinity"),
        (b'{"pixels": [-Infinity]}', "Infinity"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"pixels": [' + b"9" * 5000 + b"]}", "not valid JSON"),  # an integer of 5000 digits
    ],
)
def test_malformed_bodies_are_400(client, body, why):
    assert why in assert_refused(raw(client, body), 400)


@pytest.mark.parametrize(
    "payload,why",
    [
        ([1, 2, 3], "JSON object"),
        ("pixels", "JSON object"),
        (7, "JSON object"),
        ({}, "exactly one"),
        ({"pixel": []}, "exactly one"),
        ({"pixels": [0] * 784, "image": "data:image/png;base64,"}, "exactly one"),
        ({"pixels": "0" * 784}, "a string"),
        ({"pixels": {"0": 1}}, "an object"),
        ({"pixels": None}, "null"),
        ({"pixels": []}, "got 0"),
        ({"pixels": [0] * 783}, "got 783"),
        ({"pixels": [0] * 785}, "got 785"),
        ({"pixels": [[0] * 28] * 28}, "got 28"),
        ({"pixels": [0] * 783 + ["12"]}, "a string"),
        ({"pixels": [0] * 783 + [True]}, "a boolean"),
        ({"pixels": [0] * 783 + [None]}, "null"),
        ({"pixels": [0] * 783 + [[1]]}, "a list"),
        ({"pixels": [-1] + [0] * 783}, "0..255"),
        ({"pixels": [256] + [0] * 783}, "0..255"),
        ({"pixels": [255.5] + [0] * 783}, "0..255"),
        ({"pixels": [10**40] + [0] * 783}, "0..255"),
        ({"image": 12}, "data: URL string"),
        ({"image": ["data:image/png;base64,"]}, "data: URL string"),
        ({"image": "https://example.com/digit.png"}, "data URL"),
        ({"image": "data:text/html;base64,PGI+"}, "data URL"),
        ({"image": "data:image/png;base64,@@@not base64@@@"}, "base64"),
        ({"image": "data:image/png;base64," + base64.b64encode(b"GIF89a but not really").decode()}, "image"),
        ({"image": "data:image/png;base64," + base64.b64encode(b"%!PS-Adobe-3.0 EPSF-3.0\n").decode()}, "image"),
        (
            {
                "image": "data:image/svg+xml;base64,"
                + base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
            },
            "image",
        ),
    ],
)
def test_wrong_shapes_types_and_values_are_400(client, payload, why):
    assert why in assert_refused(client.post("/api/predict", json=payload), 400)


def test_huge_numbers_from_json_exponents_are_refused(client):
    body = b'{"pixels": [1e999' + b", 0" * 783 + b"]}"  # parses as inf
    assert "0..255" in assert_refused(raw(client, body), 400)


def test_a_body_over_the_limit_is_413_declared_or_streamed(client):
    big = b'{"pixels": [' + b"0, " * (MAX_BODY_BYTES // 3 + 10) + b"0]}"
    assert "limit" in assert_refused(raw(client, big), 413)

    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    assert "limit" in assert_refused(client.post("/api/predict", content=chunks()), 413)
    assert "limit" in assert_refused(raw(client, b"{}", **{"content-length": str(10**12)}), 413)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height, 1-bit, with a few bytes of data: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [2000, 20_000, 1_000_000])
def test_decompression_bombs_are_refused_from_the_header(client, side):
    url = "data:image/png;base64," + base64.b64encode(_png_header_only(side, side)).decode()
    assert "limit" in assert_refused(client.post("/api/predict", json={"image": url}), 413)


def test_a_real_compressed_bomb_is_refused(client):
    buf = io.BytesIO()
    Image.new("1", (4000, 4000), 0).save(buf, "PNG", optimize=True)  # 16 Mpx in a few kB
    assert len(buf.getvalue()) < 100_000 and MAX_IMAGE_PIXELS < 4000 * 4000
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert_refused(client.post("/api/predict", json={"image": url}), 413)


def test_truncated_and_blank_images(client):
    png = io.BytesIO()
    canvas_snapshot().save(png, "PNG")
    cut = "data:image/png;base64," + base64.b64encode(png.getvalue()[:200]).decode()
    assert_refused(client.post("/api/predict", json={"image": cut}), 400)
    blank = png_data_url(Image.new("RGB", (280, 280), (0, 0, 0)))
    assert "no digit" in assert_refused(client.post("/api/predict", json={"image": blank}), 422)
    clear = png_data_url(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))
    assert "transparent" in assert_refused(client.post("/api/predict", json={"image": clear}), 422)


def test_wrong_methods_and_paths_are_json_4xx(client):
    assert_refused(client.get("/api/predict"), 405)
    assert_refused(client.put("/api/model"), 405)
    assert_refused(client.get("/nowhere"), 404)
    assert_refused(client.get("/../../etc/passwd"), 404)


def test_the_server_keeps_answering_after_hostile_requests(client):
    for body in (b"[" * 100_000, b"\0" * 1000, b'{"image": "data:image/png;base64,AAAA"}'):
        assert_refused(raw(client, body))
    assert client.post("/api/predict", json={"pixels": digit_pixels()}).status_code == 200


def test_an_unexpected_failure_is_a_json_500_without_traceback(model_file, monkeypatch):
    def broken(X, backend=None):
        raise RuntimeError("kernel exploded")

    net, meta = load_model(model_file)
    app = create_app(net, meta)
    monkeypatch.setattr(net, "predict_proba", broken)  # the forward pass fails from now on
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/predict", json={"pixels": digit_pixels()})
        assert r.status_code == 500 and r.json() == {"error": "internal error (logged by the server)"}
        assert c.get("/api/model").status_code == 200
    assert app.state.admission.pending == 0  # the failed request left the queue


def test_local_server_refuses_foreign_host_headers(model_file):
    net, meta = load_model(model_file)
    with TestClient(
        create_app(net, meta, allowed_hosts=("127.0.0.1", "localhost")), base_url="http://127.0.0.1:8000"
    ) as c:
        assert c.get("/api/model").status_code == 200
        assert c.get("/api/model", headers={"host": "evil.example:8000"}).status_code == 400


# ---- under load: micro-batching and the queue's bound --------------------------------------------


def _concurrently(app, bodies: list[dict]) -> list:
    """POST every body to /api/predict at once (one event loop, the app in process); the responses."""
    import asyncio

    import httpx

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await asyncio.gather(*(c.post("/api/predict", json=b) for b in bodies))

    return asyncio.run(go())


def test_concurrent_predictions_share_forward_passes_and_answer_each_its_own(model_file):
    net, meta = load_model(model_file)
    app = create_app(net, meta)
    bodies = [{"pixels": digit_pixels(seed)} for seed in range(64)]
    responses = _concurrently(app, bodies)
    batcher = app.state.batcher
    assert batcher.images == 64 and batcher.passes < 64  # some forward passes served several requests
    assert max(int(r.headers["x-batch-size"]) for r in responses) > 1
    _, alone = predict_batch(net, np.array([b["pixels"] for b in bodies], dtype=np.uint8))
    for r, body, probs in zip(responses, bodies, alone):
        assert r.status_code == 200
        assert r.json()["pixels"] == body["pixels"]  # each request gets its own image's answer
        assert np.allclose(r.json()["probabilities"], probs, atol=1e-6)


def test_max_batch_one_gives_every_request_its_own_forward_pass(model_file):
    net, meta = load_model(model_file)
    app = create_app(net, meta, max_batch=1)
    responses = _concurrently(app, [{"pixels": digit_pixels(seed)} for seed in range(16)])
    assert app.state.batcher.passes == app.state.batcher.images == 16
    assert {r.headers["x-batch-size"] for r in responses} == {"1"}


class _Gate:
    """A network whose forward pass waits for ``open()`` (so requests pile up behind it)."""

    def __init__(self, net):
        import threading

        self.net, self.event, self.calls = net, threading.Event(), 0

    def __getattr__(self, name):
        return getattr(self.net, name)

    def predict_proba(self, X, backend=None):
        self.calls += 1
        if self.calls > 1:  # the first is the server's warm-up at start
            assert self.event.wait(30), "the test never opened the gate"
        return self.net.predict_proba(X, backend)


def test_past_the_queue_bound_the_answer_is_a_json_503_with_retry_after(model_file):
    import asyncio
    import threading

    import httpx

    from fastnn.serve.admission import Admission

    net, meta = load_model(model_file)
    gate = _Gate(net)
    app = create_app(gate, meta, admission=Admission(max_pending=4))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            held = [asyncio.create_task(c.post("/api/predict", json={"pixels": digit_pixels(k)})) for k in range(4)]
            while app.state.admission.pending < 4:
                await asyncio.sleep(0.01)
            refused = await asyncio.gather(
                *(c.post("/api/predict", json={"pixels": digit_pixels(k)}) for k in range(6))
            )
            threading.Timer(0.05, gate.event.set).start()
            return await asyncio.gather(*held), refused

    answered, refused = asyncio.run(go())
    assert [r.status_code for r in answered] == [200] * 4  # queued, then answered
    for r in refused:
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"].startswith("the server is busy (4 requests in hand, at most 4)")
    assert app.state.admission.pending == 0 and app.state.admission.bytes == 0


def test_the_queue_also_bounds_the_bytes_of_bodies_held(model_file):
    from fastnn.serve.admission import Admission

    net, meta = load_model(model_file)
    body = json.dumps({"pixels": digit_pixels()}).encode()
    app = create_app(net, meta, admission=Admission(max_pending=100, max_bytes=len(body) - 1))
    with TestClient(app) as c:
        r = raw(c, body)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
    app = create_app(net, meta, admission=Admission(max_pending=100, max_bytes=len(body)))
    with TestClient(app) as c:
        assert raw(c, body).status_code == 200


# ---- the command line --------------------------------------------------------------------------


def test_a_model_not_on_784_features_is_refused_at_startup(tmp_path, capsys):
    save_network(init_network(20, 8, 3, seed=0), tmp_path / "small.npz")
    with pytest.raises(FastnnError, match="20 features"):
        load_model(tmp_path / "small.npz")
    assert fastnn_main(["serve", str(tmp_path / "small.npz"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "784" in err


@pytest.mark.parametrize("name,content", [("missing.npz", None), ("junk.npz", b"not a model")])
def test_a_model_that_fails_to_load_is_one_error_line(tmp_path, capsys, name, content):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    assert fastnn_main(["serve", str(tmp_path / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and captured.err.startswith("error: ")


@pytest.mark.parametrize("option", ["--queue", "--max-batch"])
def test_a_queue_or_batch_below_one_is_one_error_line(model_file, capsys, option):
    assert fastnn_main(["serve", str(model_file), "--port", "0", option, "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {option} must be a positive number, got 0\n"


def test_a_port_in_use_is_one_error_line(model_file, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert fastnn_main(["serve", str(model_file), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"127.0.0.1:{port}" in err
    assert fastnn_main(["serve", str(model_file), "--port", "70000"]) == 2


def start_server(model: Path, *extra: str):
    """Run ``scripts/serve.py MODEL --port 0`` in a subprocess; returns (process, base URL)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), str(model), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/)", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no address printed: {line!r} {proc.stderr.read()}")
    return proc, match.group(1)


def test_the_command_serves_on_localhost_and_stops_cleanly(model_file):
    proc, url = start_server(model_file)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/model", timeout=10) as r:
            assert json.load(r)["shape"] == [784, 32, 10]
        req = urllib.request.Request(url + "api/predict", data=b"{bad", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        assert info.value.code == 400 and "error" in json.load(info.value)
        body = json.dumps({"pixels": digit_pixels()}).encode()
        with urllib.request.urlopen(urllib.request.Request(url + "api/predict", data=body), timeout=10) as r:
            assert len(json.load(r)["probabilities"]) == 10
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err


def test_a_body_that_does_not_arrive_in_time_is_a_json_408_and_frees_its_place(model_file):
    """A client that sends its headers and then trickles (or stops) its body is answered
    once ``body_seconds`` have passed, and no longer counts against the queue's bound."""
    import asyncio
    import time

    import httpx

    net, meta = load_model(model_file)
    app = create_app(net, meta, body_seconds=0.3)

    async def stalled():
        yield b'{"pixels": [0, 0, '
        await asyncio.sleep(30)  # never finishes in the test's time
        yield b"0]}"

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            t0 = time.monotonic()
            r = await c.post("/api/predict", content=stalled(), headers={"Content-Length": "2000"})
            late = time.monotonic() - t0
            fine = await c.post("/api/predict", json={"pixels": digit_pixels()})
            return r, late, fine

    r, late, fine = asyncio.run(go())
    assert r.status_code == 408 and r.headers["connection"] == "close"
    assert r.json()["error"] == "the request body did not arrive within 0.3 s"
    assert 0.3 <= late < 10
    assert app.state.admission.pending == 0 and app.state.admission.bytes == 0
    assert fine.status_code == 200 and len(fine.json()["probabilities"]) == 10
