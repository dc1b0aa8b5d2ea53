"""``report.html``: a training run's report as one self-contained web page.

:func:`render_report_html` is pure: from ``metrics`` (what ``metrics.json``
holds) and the folder holding the PNGs that ``metrics["figures"]`` names, it
returns the page, with every figure embedded as a base64 ``data:`` URL, so the
file can be opened, mailed or archived alone.  It shows, in order: the metrics
per split, the training curves, the confusion matrix (figure and table), the
misclassified gallery, one prediction, what the first layer learned, what
training saw (with augmentation), the per-class figures, the run (dataset and
its sizes, the network's layers, backend, time), the config and the per-epoch
history.  Every string from ``metrics`` is HTML-escaped; the page runs no
script and loads nothing (its Content-Security-Policy forbids both).
:func:`write_report_html` writes it.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

from ._atomic import atomic_write_text
from .errors import FastnnError

__all__ = ["render_report_html", "write_report_html"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SPLITS = ("train", "dev", "test")
_FIGURES = (  # (key in metrics["figures"], heading, alt text)
    ("history", "Training curves", "accuracy and loss per epoch"),
    ("confusion_matrix", "Confusion matrix", "confusion matrix heatmap with counts"),
    ("misclassified", "Misclassified images", "gallery of misclassified images with true and predicted labels"),
    ("prediction", "One prediction", "the first image with its predicted and true label"),
    ("first_layer", "What the first layer learned", "each first-layer unit's weights drawn as a 28x28 image"),
    ("augmentation", "What training saw", "original images beside their distorted versions"),
)

_STYLE = """
body { font-family: system-ui, sans-serif; color: #1b1f24; margin: 0 auto; max-width: 1000px; padding: 16px 24px; }
h1 { font-size: 1.6rem; margin-bottom: 4px; } h2 { font-size: 1.2rem; margin-top: 32px; border-bottom: 1px solid #d0d7de; }
.sub { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 9px; text-align: right; }
th { background: #f6f8fa; } td.k, th.k { text-align: left; }
figure { margin: 8px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: .85rem; }
.missing { color: #9a3412; }
table.cm td { min-width: 2.2em; } table.cm td.diag { font-weight: 700; background: #e6f0ff; }
details { margin: 8px 0; } summary { cursor: pointer; color: #0969da; }
"""


def _e(value) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _num(value, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return _e(value)
    if isinstance(value, int):
        return _e(value)
    if isinstance(value, float):
        return _e(f"{value:.{digits}f}") if math.isfinite(value) else _e(value)
    return _e(value)


def _table(header: list, rows: Sequence[Sequence], first_is_key: bool = True, cls: str = "") -> str:
    head = "".join(
        f'<th class="k">{_e(h)}</th>' if i == 0 and first_is_key else f"<th>{_e(h)}</th>" for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="k">{_e(c)}</td>' if i == 0 and first_is_key else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    klass = f' class="{_e(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(folder: Path, name) -> str | None:
    """The figure file ``name`` in ``folder`` as a data URL; None if absent or not a PNG.

    Only a plain file name is read (no folders, no ``..``): the figures live
    next to ``metrics.json``.
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        return None
    try:
        data = (folder / name).read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _splits(metrics: dict) -> list[str]:
    return [s for s in _SPLITS if isinstance(metrics.get(s), dict) and "accuracy" in metrics[s]]


def _backend(metrics: dict):
    """The backend: top-level in older metrics.json files, in ``config`` in newer ones."""
    config = metrics.get("config")
    return metrics.get("backend", config.get("backend") if isinstance(config, dict) else None)


def _network(metrics: dict) -> str | None:
    """``784-256-10 relu/softmax, float32`` from ``metrics["network"]``; None if absent or malformed."""
    network = metrics.get("network")
    if not isinstance(network, dict) or not isinstance(network.get("sizes"), list):
        return None
    text = "-".join(str(s) for s in network["sizes"])
    if network.get("activation") is not None and network.get("head") is not None:
        text += f" {network['activation']}/{network['head']}"
    return f"{text}, {network['dtype']}" if network.get("dtype") is not None else text


def _run_section(metrics: dict) -> str:
    rows = [
        ("dataset", metrics.get("dataset")),
        ("network", _network(metrics)),
        ("training images", metrics.get("n_train")),
        ("dev images", metrics.get("n_dev")),
        ("preset", metrics.get("preset")),
        ("backend", _backend(metrics)),
        ("threads", metrics.get("threads")),
        ("threading layer", metrics.get("threading_layer")),
    ]
    if isinstance(metrics.get("train_seconds"), (int, float)):
        rows.append(("training time", f"{metrics['train_seconds']:.2f} s"))
    epochs = metrics.get("epoch_seconds")
    if isinstance(epochs, list) and epochs:
        rows.append(("epochs run", len(epochs)))
    platform = metrics.get("platform")
    if isinstance(platform, dict):
        rows.append(("platform", ", ".join(f"{k} {v}" for k, v in platform.items())))
    rows = [(k, _e(v)) for k, v in rows if v is not None]
    return "<h2>Run</h2>" + _table(["", "value"], rows)


def _metrics_section(metrics: dict, splits: list[str]) -> str:
    if not splits:
        return "<h2>Metrics</h2><p>No split was evaluated.</p>"
    cols = [
        ("accuracy", "accuracy"),
        ("precision", "precision (macro)"),
        ("recall", "recall (macro)"),
        ("f1", "F1 (macro)"),
        ("precision_weighted", "precision (weighted)"),
        ("recall_weighted", "recall (weighted)"),
        ("f1_weighted", "F1 (weighted)"),
        ("n", "images"),
    ]
    rows = [[s] + [_num(metrics[s].get(k)) if k in metrics[s] else "" for k, _ in cols] for s in splits]
    return "<h2>Metrics</h2>" + _table(["split"] + [label for _, label in cols], rows)


def _figure(folder: Path, figures: dict, key: str, heading: str, alt: str) -> str:
    if key not in figures:
        return ""
    url = _image(folder, figures[key])
    if url is None:
        body = f'<p class="missing">figure {_e(figures[key])} is missing or not a PNG</p>'
    else:
        body = f'<figure><img src="{url}" alt="{_e(alt)}"><figcaption>{_e(figures[key])}</figcaption></figure>'
    return f'<h2 id="{_e(key)}">{_e(heading)}</h2>{body}'


def _confusion_table(report: dict, split: str) -> str:
    cm = report.get("confusion_matrix")
    if not isinstance(cm, list) or not cm:
        return ""
    names = [pc.get("name", k) for k, pc in enumerate(report.get("per_class", []))]
    names += [str(k) for k in range(len(names), len(cm))]
    rows = []
    for i, row in enumerate(cm):
        cells = "".join(
            f'<td class="diag">{_num(v)}</td>' if i == j else f"<td>{_num(v)}</td>" for j, v in enumerate(row)
        )
        rows.append(f'<tr><th class="k">{_e(names[i])}</th>{cells}</tr>')
    head = "".join(f"<th>{_e(n)}</th>" for n in names[: len(cm[0])])
    return (
        f"<details><summary>Confusion matrix as a table ({_e(split)}; rows: true class, "
        f'columns: predicted)</summary><table class="cm"><thead><tr><th class="k">true \\ predicted</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def _per_class_section(metrics: dict, splits: list[str]) -> str:
    splits = [s for s in splits if isinstance(metrics[s].get("per_class"), list)]
    if not splits:
        return ""
    n = max(len(metrics[s]["per_class"]) for s in splits)
    header = ["class"] + [f"{s} {m}" for s in splits for m in ("precision", "recall", "F1", "support")]
    rows = []
    for k in range(n):
        name = next((metrics[s]["per_class"][k].get("name") for s in splits if k < len(metrics[s]["per_class"])), k)
        row = [name]
        for s in splits:
            pc = metrics[s]["per_class"][k] if k < len(metrics[s]["per_class"]) else {}
            row += [_num(pc.get(m)) if m in pc else "" for m in ("precision", "recall", "f1", "support")]
        rows.append(row)
    return "<h2>Per class</h2>" + _table(header, rows)


def _config_section(metrics: dict) -> str:
    config = metrics.get("config")
    if not isinstance(config, dict) or not config:
        return ""
    return "<h2>Config</h2>" + _table(["option", "value"], [(k, _e(v)) for k, v in config.items()])


def _history_section(metrics: dict) -> str:
    history = metrics.get("history")
    if not isinstance(history, dict):
        return ""
    epochs = history.get("epochs")
    if not isinstance(epochs, list) or not epochs or not all(isinstance(r, dict) for r in epochs):
        return ""
    keys = [
        k
        for k in ("epoch", "train_loss", "train_accuracy", "dev_accuracy", "lr", "seconds")
        if any(k in r for r in epochs)
    ]
    rows = [
        [_e(r.get("epoch", i + 1))] + [_num(r.get(k)) if k in r else "" for k in keys[1:]] for i, r in enumerate(epochs)
    ]
    note = ""
    if history.get("best_epoch") is not None:
        note = f"<p>Early stopping kept the weights of epoch {_e(history['best_epoch'])}.</p>"
    return f"<details><summary>History per epoch ({len(epochs)} epochs)</summary>{note}{_table(keys, rows)}</details>"


def render_report_html(metrics: dict, folder) -> str:
    """The report page for ``metrics`` (the ``metrics.json`` content), figures read from ``folder``.

    Pure apart from reading the PNG files ``metrics["figures"]`` names (plain
    file names in ``folder``); a missing or non-PNG figure is noted on the page,
    never an error.  Returns the whole HTML document as a string.
    """
    folder = Path(folder)
    if not isinstance(metrics, dict):
        raise FastnnError("render_report_html needs the metrics as a dict")
    splits = _splits(metrics)
    figures = metrics["figures"] if isinstance(metrics.get("figures"), dict) else {}
    dataset = metrics.get("dataset", "")
    headline = ", ".join(
        f"{s} accuracy {metrics[s]['accuracy']:.4f}" for s in splits if isinstance(metrics[s]["accuracy"], (int, float))
    )
    cm_split = "test" if "test" in splits else "dev" if "dev" in splits else None
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fastnn report: {_e(dataset)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>fastnn report: {_e(dataset)}</h1>",
        f'<p class="sub">{_e(headline)}</p>' if headline else "",
        _metrics_section(metrics, splits),
    ]
    for key, heading, alt in _FIGURES[:2]:
        parts.append(_figure(folder, figures, key, heading, alt))
    if cm_split:
        if "confusion_matrix" not in figures:
            parts.append("<h2>Confusion matrix</h2>")
        parts.append(_confusion_table(metrics[cm_split], cm_split))
    for key, heading, alt in _FIGURES[2:]:
        parts.append(_figure(folder, figures, key, heading, alt))
    known = {k for k, _, _ in _FIGURES}
    parts.extend(
        _figure(folder, figures, key, str(key).replace("_", " ").capitalize(), str(key))
        for key in figures
        if key not in known
    )  # figures this page does not know yet: at the end
    parts += [
        _per_class_section(metrics, splits),
        _run_section(metrics),
        _config_section(metrics),
        _history_section(metrics),
        '<p class="sub">Also in this folder: metrics.json (every figure above as data), '
        "model.npz and the PNG figures.</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report_html(folder, metrics: dict) -> Path:
    """Write ``folder/report.html`` from ``metrics`` and the figures in ``folder``; returns its path."""
    path = Path(folder) / "report.html"
    try:
        atomic_write_text(path, render_report_html(metrics, folder))
    except OSError as exc:
        raise FastnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
