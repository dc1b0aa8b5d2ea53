"""``fastnn serve``'s startup line: the address and the model's shape, whatever its depth.

(The server's requests and its load handling are tested in test_serve.py.)
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("starlette", reason="fastnn serve needs the serve extra (pip install -e '.[serve]')")
uvicorn = pytest.importorskip("uvicorn", reason="fastnn serve needs the serve extra (pip install -e '.[serve]')")

from fastnn.cli import main as fastnn_main  # noqa: E402
from fastnn.modelfile import save_network  # noqa: E402
from fastnn.network import init_network  # noqa: E402


def test_the_startup_line_names_the_models_layers_activation_and_head(tmp_path, capsys, monkeypatch):
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(sockets))
    path = save_network(init_network(784, (64, 32), 10, seed=0, activation="tanh"), tmp_path / "deep.npz")
    assert fastnn_main(["serve", str(path), "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        rf"fastnn serve: http://127\.0\.0\.1:\d+/  \(model {re.escape(str(path))}, "
        rf"784-64-32-10 tanh/softmax; Ctrl-C to stop\)\n",
        out,
    ), out
    assert len(served) == 1
    served[0][0].close()
