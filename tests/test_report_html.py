"""Tests for report.html: fastnn.report_html renders a run's metrics as one self-contained page."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image

from fastnn.metrics import classification_report
from fastnn.report_html import render_report_html, write_report_html


class Page(HTMLParser):
    """Collects tags, image sources and text, and fails on anything that is not well nested."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.text, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    assert p.stack == [], p.stack
    return p


def metrics_for(names=tuple("0123456789"), splits=("dev", "test"), figures=None) -> dict:
    rng = np.random.default_rng(0)
    c = len(names)
    m = {
        "dataset": "mnist",
        "n_train": 55000,
        "n_dev": 5000,
        "preset": "default",
        "config": {"hidden": 256, "epochs": 2, "lr": 0.5, "optimizer": "sgd"},
        "backend": "numba",
        "threads": 2,
        "threading_layer": "omp",
        "history": {
            "epochs": [
                {"epoch": 1, "train_loss": 0.3, "train_accuracy": 0.9, "dev_accuracy": 0.95, "seconds": 0.5},
                {"epoch": 2, "train_loss": 0.2, "train_accuracy": 0.95, "dev_accuracy": 0.96, "seconds": 0.4},
            ],
            "steps": [],
            "best_epoch": None,
            "stopped_early": False,
        },
        "network": {
            "sizes": [784, 256, 128, 10],
            "hidden": [256, 128],
            "activation": "tanh",
            "head": "softmax",
            "dtype": "float32",
        },
        "epoch_seconds": [0.5, 0.4],
        "train_seconds": 0.9,
        "platform": {"python": "3.11", "machine": "x86_64", "cpus": 2},
    }
    for s in splits:
        y = rng.integers(0, c, 300)
        pred = np.where(rng.random(300) < 0.9, y, rng.integers(0, c, 300))
        m[s] = classification_report(y, pred, c, list(names))
    if figures is not None:
        m["figures"] = figures
    return m


def png(path: Path, size=(40, 30), colour=(200, 30, 30)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


FIGS = {
    "history": "history.png",
    "confusion_matrix": "confusion_matrix.png",
    "prediction": "prediction.png",
    "misclassified": "misclassified.png",
    "first_layer": "first_layer.png",
}


def test_every_figure_is_embedded_and_decodes_to_the_file(tmp_path):
    for name in FIGS.values():
        png(tmp_path / name)
    page = render_report_html(metrics_for(figures=FIGS), tmp_path)
    doc = parse(page)
    assert len(doc.images) == len(FIGS)
    for img in doc.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,") and img.get("alt")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data in {(tmp_path / n).read_bytes() for n in FIGS.values()}
    # nothing is loaded from elsewhere, and no script runs
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)
    assert "default-src 'none'" in page


def test_page_has_metrics_per_split_per_class_config_and_history(tmp_path):
    m = metrics_for(figures={})
    text = " ".join(parse(render_report_html(m, tmp_path)).text)
    for s in ("dev", "test"):
        assert f"{m[s]['accuracy']:.4f}" in text and f"{m[s]['f1']:.4f}" in text
        for pc in m[s]["per_class"]:
            assert f"{pc['recall']:.4f}" in text
    for needle in (
        "Metrics",
        "Per class",
        "Config",
        "hidden",
        "256",
        "optimizer",
        "sgd",
        "numba",
        "History per epoch",
        "Confusion matrix",
    ):
        assert needle in text, needle
    # the confusion matrix as a table: every count of the shown (test) split
    assert sum(m["test"]["confusion_matrix"][0]) == m["test"]["per_class"][0]["support"]


def test_the_first_layer_figure_has_its_heading_and_caption(tmp_path):
    png(tmp_path / "first_layer.png")
    page = render_report_html(metrics_for(figures={"first_layer": "first_layer.png"}), tmp_path)
    doc = parse(page)
    assert '<h2 id="first_layer">What the first layer learned</h2>' in page
    assert [i["alt"] for i in doc.images] == ["each first-layer unit's weights drawn as a 28x28 image"]


def test_the_run_shows_the_networks_layers_activation_head_and_dtype(tmp_path):
    m = metrics_for()
    text = " ".join(parse(render_report_html(m, tmp_path)).text)
    assert "784-256-128-10 tanh/softmax, float32" in text
    del m["network"]["dtype"], m["network"]["head"]
    assert "784-256-128-10" in " ".join(parse(render_report_html(m, tmp_path)).text)
    for broken in ({"sizes": "784-10"}, ["784", "10"], None):
        m["network"] = broken  # older or foreign metrics.json: no row, no error
        assert "network" not in " ".join(parse(render_report_html(m, tmp_path)).text).split()


def test_every_string_is_escaped(tmp_path):
    evil = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "a&b", "3", "4"]
    m = metrics_for(names=evil, figures={"history": "history.png", "<b>x</b>": "nope.png"})
    m["dataset"] = "<iframe src=//evil>"
    m["config"]["note"] = "</table><script>alert(3)</script>"
    m["network"]["activation"] = "<script>alert(4)</script>"
    png(tmp_path / "history.png")
    page = render_report_html(m, tmp_path)
    doc = parse(page)
    assert "script" not in doc.tags and "iframe" not in doc.tags
    assert [i["src"][:22] for i in doc.images] == ["data:image/png;base64,"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b" in page
    assert "&lt;script&gt;alert(4)&lt;/script&gt;/softmax" in page
    assert "<script" not in page and "<img src=x" not in page


def test_missing_foreign_or_escaping_figures_are_noted_not_read(tmp_path):
    (tmp_path / "sub").mkdir()
    secret = png(tmp_path.parent / "secret.png")
    (tmp_path / "fake.png").write_bytes(b"GIF89a not a png")
    figures = {
        "history": "missing.png",
        "confusion_matrix": "../secret.png",
        "misclassified": str(secret),
        "prediction": "fake.png",
    }
    page = render_report_html(metrics_for(figures=figures), tmp_path)
    doc = parse(page)
    assert doc.images == []
    assert page.count('class="missing"') == len(figures)


def test_dev_only_run_without_figures(tmp_path):
    m = metrics_for(splits=("dev",))
    page = render_report_html(m, tmp_path)
    text = " ".join(parse(page).text)
    assert "dev" in text and "test accuracy" not in text and "<img" not in page
    assert "Confusion matrix" in text  # the table stands in for the missing figure


def test_backend_read_from_the_config_too(tmp_path):
    m = metrics_for()
    del m["backend"]
    m["config"]["backend"] = "numpy-reference"
    page = render_report_html(m, tmp_path)
    assert page.count("numpy-reference") == 2  # in the run table and the config table


def test_write_report_html_writes_the_rendered_page(tmp_path):
    m = metrics_for(figures={})
    path = write_report_html(tmp_path, m)
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == render_report_html(m, tmp_path)
    assert json.dumps(m)  # the metrics are left JSON-serialisable (not modified)


def test_fastnn_train_writes_report_html_beside_the_figures(tmp_path, capsys):
    """A real (tiny) training run: report.html embeds each PNG the folder holds."""
    from fastnn.cli import main as fastnn_main

    rng = np.random.default_rng(0)
    y = np.arange(200) % 10
    X = (rng.random((200, 784)) * 40).astype(np.uint8)
    X[np.arange(200), y * 70] = 255
    csv = tmp_path / "train.csv"
    rows = ["label," + ",".join(f"pixel{i}" for i in range(784))]
    rows += [f"{label}," + ",".join(map(str, x)) for label, x in zip(y, X)]
    csv.write_text("\n".join(rows) + "\n")
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
                "2",
                "--dev-size",
                "50",
                "--hidden",
                "16",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    doc = parse((out / "report.html").read_text(encoding="utf-8"))
    embedded = {base64.b64decode(i["src"].split(",", 1)[1]) for i in doc.images}
    assert embedded == {(out / name).read_bytes() for name in metrics["figures"].values()}
    assert f"{metrics['dev']['accuracy']:.4f}" in " ".join(doc.text)
