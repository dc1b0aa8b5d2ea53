"""fastnn serve and report.html in a real browser: Chromium driven by Playwright.

A model is trained here on a slice of MNIST (a few seconds), ``scripts/serve.py``
serves it on a free port, and the test draws MNIST test digits on the pad with
mouse strokes (each row of ink traced as one stroke) and reads the label the
page shows.  It also opens a real ``fastnn train`` run's ``report.html`` and
checks that every embedded figure loaded.

The browser is Chromium at ``$FASTNN_CHROMIUM``, else ``chromium`` on the PATH
(Debian: ``apt-get install chromium``), launched by Playwright (``pip install
playwright``; its own browser download is not needed).  Without either the
tests are skipped with the reason, unless ``FASTNN_REQUIRE_BROWSER=1`` (set by
``.ci/run`` where Chromium could be installed), which turns that into a
failure.  ``FASTNN_SCREENSHOT=docs/serve.png`` saves the screenshot the README and the serving guide show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
PAD = 280  # the pad's size in CSS pixels (fastnn/serve/static)


def _unavailable(reason: str):
    if os.environ.get("FASTNN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FASTNN_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    pytest.importorskip("uvicorn", reason="fastnn serve needs the serve extra")
    executable = os.environ.get("FASTNN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        _unavailable("no Chromium browser found (apt-get install chromium, or set FASTNN_CHROMIUM)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as exc:
            _unavailable(f"Chromium at {executable} did not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def mnist():
    from fastnn.data import load_dataset

    try:
        return load_dataset("mnist", dev_size=0)
    except Exception as exc:  # no dataset, no drawing to trace
        pytest.skip(f"MNIST is not available: {exc}")


@pytest.fixture(scope="module")
def model_file(mnist, tmp_path_factory):
    from fastnn.config import TrainConfig
    from fastnn.modelfile import save_network
    from fastnn.training import train

    n = 20000
    net, _ = train(
        mnist.X_train[:n],
        mnist.y_train[:n],
        TrainConfig(backend="numpy", hidden=128, epochs=4, lr=0.5, seed=0),
        n_classes=10,
    )
    net.class_names = tuple(mnist.class_names)
    test_accuracy = float((net.predict(mnist.X_test) == mnist.y_test).mean())
    path = tmp_path_factory.mktemp("browser") / "model.npz"
    save_network(net, path, {"dataset": "mnist", "backend": "numpy", "accuracy": {"test": test_accuracy}})
    return path


@pytest.fixture(scope="module")
def server(model_file):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), str(model_file), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    match = re.search(r"(http://\S+/)", proc.stdout.readline())
    if match is None:
        proc.kill()
        raise AssertionError(f"fastnn serve did not start: {proc.stderr.read()}")
    yield match.group(1)
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err


def strokes(image: np.ndarray, threshold: float = 0.5) -> list[tuple[float, float, float]]:
    """The ink of a 28x28 image as horizontal strokes ``(y, x0, x1)`` in pad pixels, one per run of ink in a row."""
    cell = PAD / 28
    out = []
    for r in range(28):
        ink = np.flatnonzero(image[r] > threshold)
        if not len(ink):
            continue
        runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)
        out += [((r + 0.5) * cell, (run[0] + 0.5) * cell, (run[-1] + 0.5) * cell) for run in runs]
    return out


def draw(page, image: np.ndarray) -> None:
    box = page.locator("#pad").bounding_box()
    for y, x0, x1 in strokes(image.reshape(28, 28)):
        page.mouse.move(box["x"] + x0, box["y"] + y)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y, steps=max(2, int((x1 - x0) / 10)))
        page.mouse.up()


def wait_settled(page) -> None:
    """Until the prediction on screen is that of the last stroke (no request out or queued)."""
    page.wait_for_function(
        "() => { const s = window.fastnnState; "
        "return s && s.drawn > 0 && s.shown === s.drawn && !s.busy && !s.queued; }",
        timeout=20000,
    )


def test_drawing_a_digit_shows_its_label(browser, server, mnist):
    page = browser.new_page(viewport={"width": 820, "height": 560})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server)
    page.wait_for_function("() => document.getElementById('model').textContent.includes('784-128-10')")
    assert "test accuracy" in page.inner_text("#model")
    assert page.locator("#bars li").count() == 10

    results = []
    for index in range(8):  # the first MNIST test digits: 7 2 1 0 4 1 4 9
        page.click("#clear")
        assert page.inner_text("#prediction") == "\u2013"
        draw(page, mnist.X_test[index])
        wait_settled(page)
        shown = page.inner_text("#prediction")
        results.append((int(mnist.y_test[index]), shown))
        # the bars: ten probabilities summing to 1, the highest the label shown
        probs = [float(page.inner_text(f"#prob-{k}").rstrip("%")) / 100 for k in range(10)]
        assert abs(sum(probs) - 1) < 0.01 and str(int(np.argmax(probs))) == shown
        assert page.locator("#bars li.top").count() == 1
        # the 28x28 the network saw is on the page, with ink in it, centred like MNIST
        seen = np.array(
            page.evaluate(
                "() => Array.from(document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data)"
            ),
            dtype=float,
        )[::4].reshape(28, 28)
        assert seen.max() > 200
        rows, cols = np.indices(seen.shape)
        assert abs((rows * seen).sum() / seen.sum() - 14) < 1.5 and abs((cols * seen).sum() / seen.sum() - 14) < 1.5
    correct = sum(str(true) == shown for true, shown in results)
    assert correct >= 7, f"(true, shown) pairs: {results}"
    assert errors == [] and page.evaluate("window.fastnnState.errors") == 0

    shot = os.environ.get("FASTNN_SCREENSHOT")
    if shot:
        page.click("#clear")
        draw(page, mnist.X_test[0])
        wait_settled(page)
        page.screenshot(path=shot, full_page=True)
    page.click("#clear")
    assert page.inner_text("#prediction") == "\u2013"
    assert page.evaluate("Array.from(document.querySelectorAll('#bars .value')).every(e => e.textContent === '')")
    page.close()


def test_page_works_with_the_network_cut_off_from_the_internet(browser, server, mnist):
    """Every request the page makes goes to the server itself (no CDN): others are counted and blocked."""
    context = browser.new_context()
    foreign = []
    context.route(
        re.compile(r"^(?!" + re.escape(server) + ").*"),
        lambda route: (foreign.append(route.request.url), route.abort()),
    )
    page = context.new_page()
    page.goto(server)
    draw(page, mnist.X_test[1])
    wait_settled(page)
    assert page.inner_text("#prediction") == "2"
    assert foreign == []
    context.close()


def test_report_html_images_load(browser, mnist, tmp_path):
    from fastnn.cli import main as fastnn_main

    csv = tmp_path / "train.csv"
    X = np.rint(mnist.X_train[:600] * 255).astype(np.uint8)
    lines = ["label," + ",".join(f"pixel{i}" for i in range(784))]
    lines += [f"{y}," + ",".join(map(str, x)) for y, x in zip(mnist.y_train[:600], X)]
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert (
        fastnn_main(
            [
                "train",
                "--backend",
                "numpy",
                "--data",
                str(csv),
                "--epochs",
                "3",
                "--hidden",
                "32",
                "--dev-size",
                "200",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    page = browser.new_page()
    page.goto((out / "report.html").as_uri())
    images = page.evaluate(
        "() => Array.from(document.images).map(i => "
        "({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, alt: i.alt}))"
    )
    figures = json.loads((out / "metrics.json").read_text())["figures"]
    assert len(images) == len(figures) >= 5 and all(i["ok"] for i in images), images  # first_layer.png too
    assert "dev accuracy" in page.inner_text("h1 + p")
    page.close()
