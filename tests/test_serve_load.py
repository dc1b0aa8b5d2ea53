"""A short load on the real ``fastnn serve`` over loopback: every request gets a JSON answer, none is lost.

The server runs in its own process, as a user starts it; the load is
``benchmarks/serve_load.py`` (bounded in requests and time, loopback only)
with ``--check``, which fails on any answer that is not JSON and any request
left without an answer.  These tests assert what the server answers, never
how fast: the figures are the benchmark's (docs/guide/serving.md, "Under load").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="fastnn serve needs the serve extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="fastnn serve needs the serve extra (starlette, uvicorn)")

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "benchmarks" / "serve_load.py"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from fastnn.modelfile import save_network
    from fastnn.network import init_network

    return save_network(init_network(784, 64, 10, seed=1), tmp_path_factory.mktemp("load") / "model.npz")


@pytest.fixture
def server(model_file):
    """Start ``fastnn serve MODEL --port 0 [options]``; yields the function, stops every server after."""
    started = []

    def start(*options: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastnn", "serve", str(model_file), "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        started.append(proc)
        match = re.search(r"(http://\S+/)", proc.stdout.readline())
        assert match, proc.stderr.read()
        return match.group(1)

    yield start
    for proc in started:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err


def load(url: str, tmp_path: Path, *options: str) -> list[dict]:
    """Run the load script with --check against ``url``; its figures per load."""
    figures = tmp_path / "load.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(LOAD),
            "--url",
            url,
            "--check",
            "--json",
            str(figures),
            "--max-seconds",
            "60",
            "--min-total",
            "0",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(figures.read_text())["loads"]


def test_300_concurrent_connections_each_get_every_answer_in_json(server, tmp_path):
    loads = load(server(), tmp_path, "--clients", "300", "--requests", "4", "--burst", "300")
    assert [row["requests"] for row in loads] == [1200, 300]
    for row in loads:
        assert row["ok"] == row["requests"]  # under the queue's bound: every one answered, none refused
        assert row["busy"] == row["bad"] == row["lost"] == 0
    assert loads[0]["mean_batch"] > 1  # concurrent requests shared forward passes


def test_past_the_queue_bound_the_overflow_is_json_503s_and_nothing_is_lost(server, tmp_path):
    loads = load(server("--queue", "8"), tmp_path, "--clients", "300", "--requests", "3")
    row = loads[0]
    assert row["busy"] > 0 and row["ok"] > 0  # some refused (JSON 503 + Retry-After), the rest answered
    assert row["ok"] + row["busy"] == row["requests"] == 900
    assert row["bad"] == row["lost"] == 0
