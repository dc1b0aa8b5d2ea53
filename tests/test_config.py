"""TrainConfig is the one source of every training default and rule: the command line, the
estimator, the notebook helpers and prediction all take theirs from it."""

from __future__ import annotations

import inspect
import re
from dataclasses import MISSING, fields

import pytest

from fastnn import compat
from fastnn.backends import BACKENDS, DEFAULT_BACKEND
from fastnn.cli import build_parser
from fastnn.config import DEV_SIZE, PRESETS, RULES, TrainConfig
from fastnn.errors import FastnnError
from fastnn.network import Network

ESTIMATOR_NAMES = {"epochs": "max_iter", "lr": "learning_rate_init"}  # the rest share their names


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

    args = _train_parser().parse_args(["--hidden", "17", "--lr", "0.25", "--optimizer", "adam",
                                       "--beta2", "0.99", "--backend", "numpy"])
    config, dev_size = resolve_options(args)
    assert config == TrainConfig(hidden=17, lr=0.25, optimizer="adam", beta2=0.99, backend="numpy")
    assert dev_size == DEV_SIZE == "auto"  # a tenth of the rows, at most 5000: fastnn.data.dev_rows


def test_a_preset_changes_only_its_own_fields():
    from fastnn.cli.train import resolve_options

    config, dev_size = resolve_options(_train_parser().parse_args(["--preset", "best"]))
    recipe = PRESETS["best"]
    assert dev_size == recipe["dev_size"]
    for f in fields(TrainConfig):
        assert getattr(config, f.name) == recipe.get(f.name, f.default), f.name


def test_one_default_backend_everywhere():
    from fastnn.estimator import MLPClassifier

    assert DEFAULT_BACKEND in BACKENDS
    assert TrainConfig().backend == DEFAULT_BACKEND
    assert MLPClassifier().backend == DEFAULT_BACKEND
    assert inspect.signature(compat.mini_batch_gradient_descent).parameters["backend"].default == DEFAULT_BACKEND
    for method in (Network.logits, Network.predict, Network.predict_proba):
        assert inspect.signature(method).parameters["backend"].default == DEFAULT_BACKEND


def test_the_estimator_takes_its_defaults_from_the_config():
    from fastnn.estimator import MLPClassifier

    params = MLPClassifier().get_params()
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        name = ESTIMATOR_NAMES.get(f.name, f.name)
        if name in params:
            assert params[name] == getattr(defaults, f.name), name


def test_the_estimator_docstring_states_the_real_defaults():
    from fastnn.estimator import MLPClassifier

    signature = inspect.signature(MLPClassifier.__init__).parameters
    stated = dict(re.findall(r"^    (\w+) : .*, default (.+)$", MLPClassifier.__doc__, re.M))
    assert len(stated) >= 10
    for name, text in stated.items():
        assert text == repr(signature[name].default).replace("'", '"'), name


@pytest.mark.parametrize("name,value,message", [
    ("learning_rate_init", 0.0, "learning rate must be a finite number > 0, got 0.0"),
    ("hidden", 0, "hidden size must be a positive integer, got 0"),
    ("backend", "torch", "unknown backend 'torch'; choose one of numpy, numba"),
    ("max_iter", 0, "max_iter must be an integer >= 1, got 0"),
    ("validation_fraction", 1.0, "validation_fraction must be in (0, 1), got 1.0"),
])
def test_the_estimator_refuses_bad_parameters_with_the_configs_messages(name, value, message):
    import numpy as np

    from fastnn.estimator import MLPClassifier

    X = np.zeros((20, 4), np.float32)
    y = np.arange(20) % 2
    with pytest.raises(FastnnError) as info:
        MLPClassifier(**{name: value}).fit(X, y)
    assert str(info.value) == message


def test_every_preset_is_described_and_valid():
    from fastnn.config import PRESET_HELP

    assert set(PRESET_HELP) == set(PRESETS)
    for name, recipe in PRESETS.items():
        TrainConfig(**{k: v for k, v in recipe.items() if k != "dev_size"}).validate()
    assert PRESETS["max"]["augment"] == "affine"


def test_the_estimator_augments_only_images():
    import numpy as np

    from fastnn.estimator import MLPClassifier

    rng = np.random.default_rng(0)
    with pytest.raises(FastnnError, match="28x28"):
        MLPClassifier(hidden=4, max_iter=1, augment="affine", backend="numpy").fit(
            rng.random((40, 10), dtype=np.float32), np.arange(40) % 2)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    plain = MLPClassifier(hidden=4, max_iter=2, random_state=0, backend="numpy").fit(X, y)
    seen = MLPClassifier(hidden=4, max_iter=2, random_state=0, backend="numpy", augment="affine").fit(X, y)
    assert not np.array_equal(plain.network_.W1, seen.network_.W1)  # it trained on other images
