"""TrainConfig is the one source of every training default and rule: the command line, the
notebook helpers, prediction and the estimators' augmentation parameters all take theirs from it
(the estimators' own defaults are scikit-learn's: tests/test_estimator.py)."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

import pytest

from fastnn import compat
from fastnn.backends import BACKENDS, DEFAULT_BACKEND
from fastnn.cli import build_parser
from fastnn.config import DEV_SIZE, PRESETS, RULES, TrainConfig
from fastnn.errors import FastnnError
from fastnn.network import Network


def _train_parser():
    parser = build_parser()
    return next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]


def test_every_field_has_a_default_a_rule_and_help():
    for f in fields(TrainConfig):
        assert f.default is not MISSING
        assert f.metadata["help"] and f.name in RULES
        RULES[f.name].validate(f.default)  # every default passes its own rule
    TrainConfig().validate()


def test_fastnn_train_has_one_option_per_field_with_its_default_in_the_help():
    train = _train_parser()
    options = {a.dest: a for a in train._actions}
    for f in fields(TrainConfig):
        action = options[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.default is None  # so that a preset can tell given options from defaults
        assert f"(default {f.default})" in action.help


def test_options_given_on_the_command_line_reach_the_config_unchanged():
    from fastnn.cli.train import resolve_options

    args = _train_parser().parse_args(
        ["--hidden", "17", "--lr", "0.25", "--optimizer", "adam", "--beta2", "0.99", "--backend", "numpy"]
    )
    config, dev_size = resolve_options(args)
    assert config == TrainConfig(hidden=17, lr=0.25, optimizer="adam", beta2=0.99, backend="numpy")
    assert dev_size == DEV_SIZE == "auto"  # a tenth of the rows, at most 5000: fastnn.data.dev_rows


def test_dropout_reaches_the_config_from_the_command_line_and_defaults_to_off():
    from fastnn.cli.train import resolve_options

    assert TrainConfig().dropout == 0.0
    config, _ = resolve_options(_train_parser().parse_args(["--dropout", "0.25"]))
    assert config == TrainConfig(dropout=0.25)


@pytest.mark.parametrize("bad", [-0.1, 1, 1.0, 1.5, float("nan"), float("inf"), True, "0.5", None], ids=repr)
def test_dropout_is_a_probability_below_one_and_anything_else_is_one_clear_error(bad):
    with pytest.raises(FastnnError, match=r"^dropout must be a probability in \[0, 1\), got "):
        TrainConfig(dropout=bad).validate()
    for good in (0, 0.0, 0.5, 0.999):
        TrainConfig(dropout=good).validate()


def test_a_preset_changes_only_its_own_fields():
    from fastnn.cli.train import resolve_options

    config, dev_size = resolve_options(_train_parser().parse_args(["--preset", "best"]))
    recipe = PRESETS["best"]
    assert dev_size == recipe["dev_size"]
    for f in fields(TrainConfig):
        assert getattr(config, f.name) == recipe.get(f.name, f.default), f.name


def test_one_default_backend_everywhere():
    assert DEFAULT_BACKEND in BACKENDS
    assert TrainConfig().backend == DEFAULT_BACKEND
    assert inspect.signature(compat.mini_batch_gradient_descent).parameters["backend"].default == DEFAULT_BACKEND
    for method in (Network.logits, Network.predict, Network.predict_proba):
        assert inspect.signature(method).parameters["backend"].default == DEFAULT_BACKEND


def test_every_preset_is_described_and_valid():
    from fastnn.config import PRESET_HELP

    assert set(PRESET_HELP) == set(PRESETS)
    for recipe in PRESETS.values():
        TrainConfig(**{k: v for k, v in recipe.items() if k != "dev_size"}).validate()
    assert PRESETS["max"]["augment"] == "affine"
