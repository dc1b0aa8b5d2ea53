"""Checkpoints: a run interrupted after any epoch and resumed finishes bit for bit as the
uninterrupted run, on both backends, with every optimizer, schedule, augmentation and early
stopping; a checkpoint that is not the run's (other data, tampered, truncated, foreign) is
refused with a message naming the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastnn import checkpoint
from fastnn.config import TrainConfig
from fastnn.errors import FastnnError
from fastnn.training import Run, resume, train

from conftest import prototype_data

RECIPES = {
    "sgd-constant": dict(hidden=24, optimizer="sgd", lr=0.2),
    "momentum-step-deep": dict(hidden=(24, 16), activation="tanh", optimizer="momentum", schedule="step", lr=0.1),
    "nesterov-onecycle-decay-augment": dict(
        hidden=20, optimizer="nesterov", schedule="onecycle", lr=0.3, weight_decay=1e-3, augment="affine"
    ),
    "adam-cosine-early-stopping": dict(hidden=(20, 12), optimizer="adam", schedule="cosine", lr=0.01, patience=2),
    "sgd-dropout-deep": dict(hidden=(24, 16), activation="logistic", optimizer="sgd", lr=0.2, dropout=0.3),
}


class Interrupted(Exception):
    """Stands in for Ctrl-C after a given epoch."""


@pytest.fixture(scope="module")
def data():
    X, y = prototype_data(n=700, noise=1.5)
    return X[:560], y[:560], X[560:], y[560:]


def _config(backend, recipe, epochs=6):
    return TrainConfig(epochs=epochs, batch_size=64, seed=3, backend=backend, **RECIPES[recipe])


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _interrupted_after(k, X, y, X_dev, y_dev, config, path):
    def progress(row):
        if row["epoch"] == k:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(X, y, config, X_dev=X_dev, y_dev=y_dev, checkpoint_path=path, progress=progress)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_resumed_run_ends_bit_for_bit_as_the_uninterrupted_one(data, tmp_path, backend_name, recipe):
    X, y, X_dev, y_dev = data
    config = _config(backend_name, recipe)
    full, full_history = train(X, y, config, X_dev=X_dev, y_dev=y_dev)
    for k in (1, 4):
        path = tmp_path / f"after{k}" / checkpoint.NAME
        path.parent.mkdir()
        _interrupted_after(k, X, y, X_dev, y_dev, config, path)
        net, history = resume(path, X, y, X_dev=X_dev, y_dev=y_dev)
        np.testing.assert_array_equal(net.params.flat, full.params.flat)
        assert _strip(history.epochs) == _strip(full_history.epochs)
        assert (history.best_epoch, history.stopped_early) == (full_history.best_epoch, full_history.stopped_early)


def test_dropout_round_trips_through_checkpoint_model_file_and_report(data, tmp_path):
    """A run with dropout records it in its checkpoint, its report and its model file; those
    written before dropout existed load with it off."""
    from dataclasses import replace

    from fastnn.modelfile import load_network
    from fastnn.report import RunResult, evaluate, write_report

    X, y, X_dev, y_dev = data
    config = _config("numpy", "sgd-dropout-deep", epochs=1)
    path = tmp_path / checkpoint.NAME
    net, history = train(X, y, config, checkpoint_path=path)
    meta, _ = checkpoint.load(path)
    assert checkpoint.config_of(meta) == config and config.dropout == 0.3
    splits = {"dev": (X_dev, y_dev)}
    result = RunResult("prototypes", config, net, history, evaluate(net, splits, "numpy"), len(X), len(X_dev))
    out = write_report(tmp_path / "report", result, splits, plots=False)

    def config_in(recorded):
        return TrainConfig(**{**recorded, "hidden": tuple(recorded["hidden"])}).validate()

    assert config_in(json.loads((out / "metrics.json").read_text())["config"]) == config
    assert config_in(load_network(out / "model.npz")[1]["config"]) == config
    old = {**meta, "config": {k: v for k, v in meta["config"].items() if k != "dropout"}}
    assert checkpoint.config_of(old) == replace(config, dropout=0.0)
    assert config_in(old["config"]) == replace(config, dropout=0.0)  # a report's or a model file's likewise


def test_early_stopping_that_fires_right_after_the_interruption_still_restores_the_best_epoch(tmp_path):
    """Noisy data and a high rate: the dev accuracy peaks early and the run stops on patience;
    interrupt it on every epoch in turn, and each resumed run must stop at the same epoch
    with the same (restored) best weights."""
    X, y = prototype_data(n=500, noise=3.0)
    config = TrainConfig(hidden=16, epochs=30, batch_size=50, lr=2.0, patience=2, seed=1, backend="numpy")
    full, full_history = train(X[:400], y[:400], config, X_dev=X[400:], y_dev=y[400:])
    assert full_history.stopped_early and full_history.best_epoch < len(full_history.epochs)
    for k in range(1, len(full_history.epochs)):
        path = tmp_path / f"k{k}.npz"
        _interrupted_after(k, X[:400], y[:400], X[400:], y[400:], config, path)
        net, history = resume(path, X[:400], y[:400], X_dev=X[400:], y_dev=y[400:])
        np.testing.assert_array_equal(net.params.flat, full.params.flat)
        assert (history.best_epoch, len(history.epochs)) == (full_history.best_epoch, len(full_history.epochs))


def test_a_finished_runs_checkpoint_resumes_to_the_same_result_without_training(data, tmp_path):
    X, y, X_dev, y_dev = data
    config = _config("numpy", "sgd-constant", epochs=2)
    path = tmp_path / checkpoint.NAME
    net, _ = train(X, y, config, X_dev=X_dev, y_dev=y_dev, checkpoint_path=path)
    again, history = resume(path, X, y, X_dev=X_dev, y_dev=y_dev)
    np.testing.assert_array_equal(again.params.flat, net.params.flat)
    assert len(history.epochs) == 2


def test_the_checkpoint_records_the_runs_state_and_the_callers_metadata(data, tmp_path):
    X, y, X_dev, y_dev = data
    config = _config("numpy", "adam-cosine-early-stopping", epochs=2)
    path = tmp_path / checkpoint.NAME
    train(X, y, config, X_dev=X_dev, y_dev=y_dev, checkpoint_path=path, checkpoint_metadata={"data": "mine.csv"})
    meta, arrays = checkpoint.load(tmp_path)  # a folder finds its checkpoint.npz
    assert meta["epochs_done"] == 2 and meta["metadata"] == {"data": "mine.csv"}
    assert checkpoint.config_of(meta) == config
    assert meta["network"]["sizes"] == [784, 20, 12, 10] and meta["optimizer"] == "adam"
    assert int(arrays["optimizer_t"]) == 2 * 9  # 560 rows in batches of 64: 9 steps an epoch
    assert {"params", "optimizer_m", "optimizer_v", "best"} <= set(arrays)


def test_resuming_on_other_data_is_refused(data, tmp_path):
    X, y, X_dev, y_dev = data
    config = _config("numpy", "sgd-constant")
    path = tmp_path / checkpoint.NAME
    _interrupted_after(1, X, y, X_dev, y_dev, config, path)
    with pytest.raises(FastnnError, match="other training data"):
        resume(path, X[::-1].copy(), y[::-1].copy(), X_dev=X_dev, y_dev=y_dev)


def _saved(data, tmp_path):
    X, y, X_dev, y_dev = data
    path = tmp_path / checkpoint.NAME
    _interrupted_after(1, X, y, X_dev, y_dev, _config("numpy", "sgd-constant"), path)
    return path


def test_a_tampered_checkpoint_fails_its_checksum(data, tmp_path):
    path = _saved(data, tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["params"] = arrays["params"].copy()
    arrays["params"][3] += 1.0
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(FastnnError, match="checksum mismatch"):
        checkpoint.load(path)


@pytest.mark.parametrize("damage", ["truncated", "not an archive", "foreign npz", "newer version", "missing"])
def test_a_damaged_or_foreign_checkpoint_is_refused(data, tmp_path, damage):
    path = _saved(data, tmp_path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "not an archive":
        path.write_text("hello")
    elif damage == "foreign npz":
        with open(path, "wb") as fh:
            np.savez(fh, params=np.zeros(3))
    elif damage == "newer version":
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays["meta"].tobytes())
        meta["version"] = 99
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        path.unlink()
    with pytest.raises(FastnnError) as info:
        Run.resume(path, *data[:2], X_dev=data[2], y_dev=data[3])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_checking_for_a_stop_between_chunks_does_not_change_the_run(data):
    X, y, X_dev, y_dev = data
    config = _config("numba", "nesterov-onecycle-decay-augment", epochs=2)
    plain, _ = train(X, y, config, X_dev=X_dev, y_dev=y_dev)
    asked = []
    checked, _ = train(X, y, config, X_dev=X_dev, y_dev=y_dev, stop=lambda: asked.append(1) and False)
    np.testing.assert_array_equal(checked.params.flat, plain.params.flat)
    assert asked  # it was asked, between chunks


def test_a_stop_request_ends_the_run_within_the_epoch_keeping_the_finished_ones(data, tmp_path):
    X, y, X_dev, y_dev = data
    config = TrainConfig(hidden=16, epochs=5, batch_size=8, seed=3, backend="numpy")  # 70 steps an epoch
    path = tmp_path / checkpoint.NAME
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3  # the first check of epoch 2 (epoch 1 has 2 checks, and the check after it)

    from fastnn.training import Interrupted

    with pytest.raises(Interrupted, match="stopped in epoch 2"):
        train(X, y, config, X_dev=X_dev, y_dev=y_dev, checkpoint_path=path, stop=stop)
    assert checkpoint.load(path)[0]["epochs_done"] == 1
    full, _ = train(X, y, config, X_dev=X_dev, y_dev=y_dev)
    resumed, _ = resume(path, X, y, X_dev=X_dev, y_dev=y_dev)
    np.testing.assert_array_equal(resumed.params.flat, full.params.flat)
