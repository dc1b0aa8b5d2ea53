"""A run's report: evaluate a trained network, then write the whole report folder from one result.

Data flows one way: ``fastnn train`` (or a notebook) loads a dataset, trains,
and :func:`run_result` evaluates the network (:func:`evaluate`, pure: reports
per split, nothing written) and gathers everything into a :class:`RunResult`;
:func:`write_report` writes the folder from it::

    data = fastnn.load_dataset("mnist")
    config = fastnn.TrainConfig(hidden=256, epochs=15)
    net, history = fastnn.train(data.X_train, data.y_train, config, X_dev=data.X_dev,
                                y_dev=data.y_dev, class_names=data.class_names)
    result = fastnn.report.run_result(data, config, net, history)
    fastnn.report.write_report("runs/mine", result, fastnn.report.splits_of(data))

The folder holds ``model.npz``, ``metrics.json`` (:func:`metrics` of the
result), ``report.html`` (one self-contained page of it all, the page to open
first: :mod:`fastnn.report_html`) and, unless ``plots=False``, the figures: ``history.png``,
``confusion_matrix.png``, ``prediction.png`` and ``misclassified.png`` of the
test split (the dev split when there is no test split; for data that are not
28x28 images, only the first two); for a network on 28x28 images
``first_layer.png``, its first layer's weights drawn as images; and with
augmentation ``augmentation.png``: some of those images beside their distorted
versions.  The network's shape (layer sizes, activation, head) is recorded from
the network itself (:func:`fastnn.modelfile.network_summary`), not from
``config.hidden``, which a given (fine-tuned) network does not follow.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .errors import FastnnError
from .metrics import classification_report
from .modelfile import network_summary, save_network
from .network import Network
from .pixels import N_PIXELS
from .training import History

#: Figure name -> file, in the order they are drawn.
FIGURES = {
    "history": "history.png",
    "confusion_matrix": "confusion_matrix.png",
    "prediction": "prediction.png",
    "misclassified": "misclassified.png",
}
#: With augmentation: originals beside their distortions (held-out images, distorted as training was).
AUGMENTATION_FIGURE = "augmentation.png"
#: For a network on 28x28 images: its first layer's weights, unit by unit, as images.
FIRST_LAYER_FIGURE = "first_layer.png"


@dataclass
class RunResult:
    """Everything one run produced, as the report writes it.

    ``evaluation`` maps a split name (``dev``, ``test``) to its
    :func:`~fastnn.metrics.classification_report`; ``environment`` holds
    what the run ran on (threads, threading layer, platform); ``preset`` the
    named recipe used, if any.
    """

    dataset: str
    config: TrainConfig
    network: Network
    history: History
    evaluation: dict
    n_train: int
    n_dev: int
    train_seconds: float = 0.0
    preset: str | None = None
    environment: dict = field(default_factory=dict)


def splits_of(data) -> dict:
    """A :class:`~fastnn.data.Dataset`'s held-out splits, ``{"dev": (X, y), "test": (X, y)}``.

    Empty splits (no dev rows, no test files) are left out.
    """
    splits = {"dev": (data.X_dev, data.y_dev)}
    if data.X_test is not None:
        splits["test"] = (data.X_test, data.y_test)
    return {name: (X, y) for name, (X, y) in splits.items() if len(y)}


def run_result(
    data,
    config: TrainConfig,
    network: Network,
    history: History,
    *,
    train_seconds: float = 0.0,
    preset: str | None = None,
    environment: dict | None = None,
) -> RunResult:
    """The :class:`RunResult` of a network trained on ``data`` (a :class:`~fastnn.data.Dataset`):
    evaluated on the data's held-out splits (:func:`evaluate`, with the config's backend).

    The one place a run's result is built: ``fastnn train``, a sweep's trials
    and a sweep's best report all call it.
    """
    return RunResult(
        dataset=data.name,
        config=config,
        network=network,
        history=history,
        evaluation=evaluate(network, splits_of(data), config.backend),
        n_train=len(data.y_train),
        n_dev=len(data.y_dev),
        train_seconds=train_seconds,
        preset=preset,
        environment=dict(environment or {}),
    )


def evaluate(net: Network, splits: dict, backend: str | None = None) -> dict:
    """Each split's classification report: ``{name: classification_report(y, net.predict(X))}``.

    ``splits`` maps names to ``(X, y)`` with ``y`` output indices; ``backend``
    (default: the default backend) predicts.  Writes nothing.
    """
    kwargs = {} if backend is None else {"backend": backend}
    return {
        name: classification_report(y, net.predict(X, **kwargs), net.n_classes, net.class_names)
        for name, (X, y) in splits.items()
        if len(y)
    }


def metrics(result: RunResult) -> dict:
    """The run as ``metrics.json`` holds it (plain JSON types)."""
    history = result.history.to_dict()
    return {
        "dataset": result.dataset,
        "n_train": int(result.n_train),
        "n_dev": int(result.n_dev),
        "preset": result.preset,
        "network": network_summary(result.network),
        "config": asdict(result.config),
        **result.environment,
        "history": history,
        "epoch_seconds": [row["seconds"] for row in history["epochs"]],
        "train_seconds": result.train_seconds,
        **result.evaluation,
    }


def model_metadata(result: RunResult) -> dict:
    """What ``model.npz`` records about its run: the dataset, the network's shape, the config
    and the accuracies."""
    return {
        "dataset": result.dataset,
        "network": network_summary(result.network),
        "config": asdict(result.config),
        "accuracy": {name: report["accuracy"] for name, report in result.evaluation.items()},
    }


def shown_split(result: RunResult) -> str | None:
    """The split the figures show: test if there is one, else dev, else none."""
    return next((name for name in ("test", "dev") if name in result.evaluation), None)


def write_report(out, result: RunResult, splits: dict, *, plots: bool = True) -> Path:
    """Write the report of ``result`` into the folder ``out`` (created if needed); returns it.

    ``splits`` are the ``(X, y)`` the evaluation was made on (the figures draw
    their images).  Every file is written into a staging folder first and then
    moved into ``out`` together, ``metrics.json`` last: a failure part way (a
    full disk, a name taken by a folder) leaves no new report file behind, and
    never a half-written one.  (Files of an earlier run that were replaced are gone.)
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".fastnn-report-", dir=out))
    except OSError as exc:
        raise FastnnError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    try:
        _render(stage, result, splits, plots)
        names = sorted(p.name for p in stage.iterdir())
        for name in names:
            if (out / name).is_dir():
                raise FastnnError(f"cannot write {out / name}: a folder of that name is in the way")
        moved = []
        try:
            for name in sorted(names, key=lambda n: n == "metrics.json"):
                os.replace(stage / name, out / name)
                moved.append(name)
        except OSError as exc:
            for name in moved:
                (out / name).unlink(missing_ok=True)
            raise FastnnError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out


def _render(folder: Path, result: RunResult, splits: dict, plots: bool) -> None:
    """Every report file, into ``folder``."""
    from ._atomic import atomic_write_text
    from .report_html import write_report_html

    save_network(result.network, folder / "model.npz", model_metadata(result))
    record = metrics(result)
    if plots:
        record["figures"] = _draw(folder, result, splits)
    write_report_html(folder, record)
    try:
        atomic_write_text(folder / "metrics.json", json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise FastnnError(f"cannot write metrics.json: {exc.strerror or exc}") from None


def _draw(folder: Path, result: RunResult, splits: dict) -> dict:
    """The figures, into ``folder``; returns name -> file of those drawn."""
    from . import plots

    net = result.network
    plots.plot_history(result.history.to_dict(), folder / FIGURES["history"])
    drawn = {"history": FIGURES["history"]}
    if net.n_features == N_PIXELS:
        plots.plot_first_layer(net.coefs[0], folder / FIRST_LAYER_FIGURE)
        drawn["first_layer"] = FIRST_LAYER_FIGURE
    split = shown_split(result)
    if split is None:
        return drawn
    X, y = splits[split]
    report = result.evaluation[split]
    pred = net.predict(X, result.config.backend)
    plots.plot_confusion_matrix(
        np.array(report["confusion_matrix"]),
        net.class_names,
        folder / FIGURES["confusion_matrix"],
        title=f"Confusion matrix ({result.dataset} {split}, accuracy {report['accuracy']:.4f})",
    )
    drawn["confusion_matrix"] = FIGURES["confusion_matrix"]
    if X.shape[1] != N_PIXELS:  # the figures below draw the inputs as 28x28 images
        return drawn
    probs = net.predict_proba(X[:1], result.config.backend)[0]
    plots.plot_prediction(
        X[0],
        net.class_names[pred[0]],
        net.class_names[y[0]],
        folder / FIGURES["prediction"],
        probs=probs,
        class_names=net.class_names,
    )
    plots.plot_misclassified(X, y, pred, folder / FIGURES["misclassified"], class_names=net.class_names)
    drawn.update(FIGURES)
    if result.config.augment != "none":
        from .augment import distort, spec_from_config

        originals = X[:12]
        plots.plot_augmentation(
            originals,
            distort(originals, spec_from_config(result.config), seed=result.config.seed),
            folder / AUGMENTATION_FIGURE,
        )
        drawn["augmentation"] = AUGMENTATION_FIGURE
    return drawn
