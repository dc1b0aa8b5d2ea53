"""The options of one training run: their defaults, their rules and the named recipes.

:class:`TrainConfig` is the one source of every training default.  Each field
carries its rule and help text in its metadata, and everything else is derived
from it:

* :meth:`TrainConfig.validate` checks every field by its rule;
* ``fastnn train`` has one option per field (``--hidden``, ``--batch-size``,
  ...), with the field's help and default (:mod:`fastnn.cli.train`);
* the scikit-learn estimators (:mod:`fastnn.estimator`) take scikit-learn's own
  parameters, and their augmentation parameters' defaults and rules from here;
* the report writes the config as :func:`dataclasses.asdict` gives it.

:data:`PRESETS` are named recipes: values for some fields (and the dev-set
size), applied over the defaults; options given explicitly override them.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .activations import ACTIVATIONS
from .augment import AUGMENTS, ERASE_MIN_AREA
from .backends import BACKENDS, DEFAULT_BACKEND
from .errors import FastnnError, option
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES

#: Rows held out of the training data for the dev set, unless told otherwise: ``"auto"``, a tenth
#: of the rows and at most 5000 (the rule is :func:`fastnn.data.dev_rows`'s).
DEV_SIZE = "auto"


def is_int(value) -> bool:
    """A whole number that is not a bool (NumPy integers count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_real(value) -> bool:
    """A finite real number that is not a bool (NumPy numbers count)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and type(value).__name__ != "bool_"
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``check(value)`` is true for good values; ``message`` says why not.

    ``message`` is formatted with ``value`` (``{value!r}``) and ``choices``.
    """

    check: Callable[[Any], bool]
    message: str
    choices: tuple = ()

    def validate(self, value) -> None:
        """Raise :class:`FastnnError` with the rule's message unless ``value`` passes."""
        if not self.check(value):
            raise FastnnError(self.message.format(value=value, choices=", ".join(self.choices)))


def int_rule(what: str, low: int, *, high: int | None = None, phrase: str | None = None) -> Rule:
    """An integer ``>= low`` (and ``< high``)."""
    ok = (lambda v: is_int(v) and low <= v) if high is None else (lambda v: is_int(v) and low <= v < high)
    return Rule(ok, f"{what} must be {phrase or f'an integer >= {low}'}, got {{value!r}}")


def real_rule(
    what: str,
    low: float,
    *,
    open_low: bool = False,
    high: float | None = None,
    closed_high: bool = False,
    phrase: str = "",
) -> Rule:
    """A finite real number ``>= low`` (``> low`` if ``open_low``; ``< high``, or ``<= high`` if
    ``closed_high``, when ``high`` is given)."""

    def ok(v):
        if not is_real(v) or not (v > low if open_low else v >= low):
            return False
        return high is None or (v <= high if closed_high else v < high)

    bound = phrase or f"a finite number {'>' if open_low else '>='} {low:g}"
    return Rule(ok, f"{what} must be {bound}, got {{value!r}}")


def choice_rule(what: str, choices: tuple) -> Rule:
    """One of ``choices``."""
    return Rule(
        lambda v: isinstance(v, str) and v in choices, f"unknown {what} {{value!r}}; choose one of {{choices}}", choices
    )


class LayerSizesError(argparse.ArgumentTypeError, ValueError):
    """A spelling of layer sizes that is none of :func:`layer_sizes`'; argparse shows its message."""


def layer_sizes(value) -> tuple:
    """Hidden layer sizes as a tuple: ``"1000,500"`` (``fastnn train --hidden``), ``"1000-500"``
    (a sweep's grid value, as in 784-1000-500-10), ``"(1000, 500)"`` (a results table's cell),
    ``256``, ``[100, 100]``, or ``""`` / ``()`` for none.  Raises ``ValueError`` naming the
    spelling if ``value`` is none of these (the sizes' range is :data:`RULES`' ``hidden``)."""
    if isinstance(value, str):
        text = value.strip().strip("()[]").replace(" ", "")
        parts = re.split(r"[,-]", text) if text else []
        if len(parts) > 1 and parts[-1] == "" and value.strip().startswith("("):
            parts.pop()  # Python's spelling of a one-layer tuple: "(16,)"
        if not all(part.isdigit() for part in parts):
            raise LayerSizesError(
                f"hidden layer sizes are whole numbers separated by commas (or by "
                f"dashes in a sweep's grid), e.g. 1000,500; got {value!r}"
            )
        return tuple(int(part) for part in parts)
    if is_int(value):
        return (int(value),)
    if isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    raise LayerSizesError(f"hidden layer sizes are a positive integer or a list of them, got {value!r}")


#: The largest layer fastnn accepts (a 784 x 65536 float32 layer is 205 MB).
MAX_LAYER = 1 << 16


def _hidden_ok(value) -> bool:
    return isinstance(value, tuple) and all(is_int(v) and 1 <= v <= MAX_LAYER for v in value)


def _option(default, rule: Rule, help: str, kind: Callable[[str], Any]) -> Any:
    """A :class:`TrainConfig` field: its default, rule, ``--help`` text and command-line type."""
    return field(default=default, metadata={"rule": rule, "help": help, "type": kind})


@dataclass
class TrainConfig:
    """Hyperparameters of one training run; validated by :meth:`validate`.

    ``hidden`` is a tuple of hidden layer sizes (an int is one layer; ``()`` none),
    ``activation`` the hidden layers' activation (:mod:`fastnn.activations`).
    ``optimizer`` is one of ``sgd``, ``momentum``, ``nesterov``, ``adam`` (rules in
    :mod:`fastnn.optimizers`; ``momentum`` is Adam's beta1); ``schedule``
    one of ``constant``, ``step``, ``cosine``, ``onecycle`` (see
    :mod:`fastnn.schedules`); ``weight_decay`` is L2 on the weights.  With
    ``patience > 0`` training stops once the dev accuracy has not improved for
    that many epochs, and the weights of the best dev epoch are restored.
    ``dropout`` is the probability of zeroing each hidden unit's output for one
    training image in one epoch (kept outputs scaled by ``1 / (1 - dropout)``),
    in training steps only; the masks are keyed on (seed, epoch, row, unit)
    (exact definition in :mod:`fastnn.dropout`).

    ``augment`` (``none``, ``affine``, ``elastic``) distorts every training image
    afresh each epoch (28x28 images only): a random affine map with rotation up
    to ``augment_rotation`` degrees, zoom ``1 +- augment_scale`` (x and y
    independently), shear up to ``augment_shear`` and shift up to
    ``augment_shift`` pixels, and for ``elastic`` also an elastic distortion of
    strength ``augment_alpha`` and smoothness ``augment_sigma`` (pixels).  With
    ``affine`` or ``elastic``, ``augment_flip`` is the probability of mirroring an
    image left-right and ``augment_erase`` that of setting a random rectangle of
    it to 0 (random erasing, up to ``augment_erase_area`` of the image): both for
    clothing rather than digits, and refused with ``augment="none"`` (zero
    rotation, scale, shear and shift leave them alone).  The exact definition is
    in :mod:`fastnn.augment`; dev and test data are never distorted.
    """

    hidden: tuple = _option(
        (256,),
        Rule(_hidden_ok, f"hidden layer sizes must be integers from 1 to {MAX_LAYER}, got {{value!r}}"),
        "hidden layer sizes, comma-separated (e.g. 1000,500)",
        layer_sizes,
    )
    activation: str = _option(
        "relu", choice_rule("activation", ACTIVATIONS), f"the hidden layers' activation: {', '.join(ACTIVATIONS)}", str
    )
    epochs: int = _option(15, int_rule("epochs", 0), "passes over the training set", int)
    batch_size: int = _option(128, int_rule("batch size", 1, phrase="a positive integer"), "mini-batch size", int)
    lr: float = _option(0.5, real_rule("learning rate", 0, open_low=True), "(peak) learning rate", float)
    seed: int = _option(
        0, int_rule("seed", 0, high=2**63, phrase="an integer >= 0"), "seed for init, shuffling and the dev split", int
    )
    backend: str = _option(
        DEFAULT_BACKEND, choice_rule("backend", BACKENDS), "numba (fast) or numpy (the reference)", str
    )
    log_every: int = _option(
        0, int_rule("log_every", 0), "also record the train loss every N steps (0: per epoch only)", int
    )
    optimizer: str = _option("sgd", choice_rule("optimizer", OPTIMIZERS), f"{', '.join(OPTIMIZERS)}", str)
    momentum: float = _option(
        0.9, real_rule("momentum", 0, high=1, phrase="in [0, 1)"), "momentum, or Adam's beta1", float
    )
    beta2: float = _option(0.999, real_rule("beta2", 0, high=1, phrase="in [0, 1)"), "Adam's beta2", float)
    weight_decay: float = _option(0.0, real_rule("weight decay", 0), "L2 weight decay on the weights", float)
    dropout: float = _option(
        0.0,
        real_rule("dropout", 0, high=1, phrase="a probability in [0, 1)"),
        "probability of dropping each hidden unit's output for a training image, per epoch "
        "(inverted dropout; off at evaluation; 0: off)",
        float,
    )
    schedule: str = _option(
        "constant", choice_rule("schedule", SCHEDULES), f"learning-rate schedule: {', '.join(SCHEDULES)}", str
    )
    patience: int = _option(
        0,
        int_rule("patience", 0),
        "stop after this many epochs without a better dev accuracy, keeping the best weights (0: off)",
        int,
    )
    augment: str = _option(
        "none",
        choice_rule("augmentation", AUGMENTS),
        "distort every training image afresh each epoch (28x28 images only): "
        "none, affine (a random affine map), elastic (affine plus an elastic "
        "distortion)",
        str,
    )
    augment_rotation: float = _option(
        10.0,
        real_rule("augment_rotation", 0, high=180, closed_high=True, phrase="in [0, 180] degrees"),
        "maximum rotation, degrees",
        float,
    )
    augment_scale: float = _option(
        0.1,
        real_rule("augment_scale", 0, high=1, phrase="in [0, 1)"),
        "zoom drawn from 1 +- this, x and y independently",
        float,
    )
    augment_shear: float = _option(
        0.2,
        real_rule("augment_shear", 0, high=10, closed_high=True, phrase="in [0, 10]"),
        "maximum shear factor",
        float,
    )
    augment_shift: float = _option(
        1.5,
        real_rule("augment_shift", 0, high=28, closed_high=True, phrase="in [0, 28] pixels"),
        "maximum shift, pixels",
        float,
    )
    augment_alpha: float = _option(
        34.0,
        real_rule("augment_alpha", 0, high=1000, closed_high=True, phrase="in [0, 1000]"),
        "elastic strength (Simard's alpha)",
        float,
    )
    augment_sigma: float = _option(
        4.0,
        real_rule("augment_sigma", 1, high=28, closed_high=True, phrase="in [1, 28] pixels"),
        "elastic smoothness, pixels (the field's Gaussian width)",
        float,
    )
    augment_flip: float = _option(
        0.0,
        real_rule("augment_flip", 0, high=1, closed_high=True, phrase="a probability in [0, 1]"),
        "probability of mirroring a training image left-right (clothing, not digits; with augment affine or elastic)",
        float,
    )
    augment_erase: float = _option(
        0.0,
        real_rule("augment_erase", 0, high=1, closed_high=True, phrase="a probability in [0, 1]"),
        "probability of random erasing: a random rectangle of a training image set to 0 "
        "(with augment affine or elastic)",
        float,
    )
    augment_erase_area: float = _option(
        0.25,
        real_rule("augment_erase_area", ERASE_MIN_AREA, high=1, closed_high=True, phrase=f"in [{ERASE_MIN_AREA:g}, 1]"),
        f"random erasing's largest rectangle, a fraction of the image (the smallest is {ERASE_MIN_AREA:g})",
        float,
    )

    def __post_init__(self):
        # One spelling of the layer sizes: TrainConfig(hidden=256) is (256,), [100, 100] is
        # (100, 100).  Text is the command line's to parse (layer_sizes); here it is refused.
        if not isinstance(self.hidden, str):
            with contextlib.suppress(ValueError):  # validate() names the bad value
                self.hidden = layer_sizes(self.hidden)

    def validate(self) -> TrainConfig:
        """Check every option, then how they combine; raise :class:`FastnnError` naming the
        first bad one, else return self."""
        self.validate_fields()
        check_augment_combination(self.augment, self.augment_flip, self.augment_erase)
        return self

    def validate_fields(self) -> TrainConfig:
        """Check every option by its own rule (not how they combine: :meth:`validate`)."""
        for f in fields(self):
            f.metadata["rule"].validate(getattr(self, f.name))
        return self


def check_augment_combination(augment, augment_flip, augment_erase) -> None:
    """Flips and erasing are options of the ``affine`` and ``elastic`` augmentations:
    refuse them with ``augment="none"`` (values already checked by their rules)."""
    if augment != "none":
        return
    for name, value, what in (("augment_flip", augment_flip, "flips"), ("augment_erase", augment_erase, "erasing")):
        if value > 0:
            raise FastnnError(
                f"{option(name, value)} needs {option('augment', 'affine')} or {option('augment', 'elastic')} "
                f"(for {what} alone, set the rotation, scale, shear and shift to 0)"
            )


#: Each :class:`TrainConfig` field's rule, by field name.
RULES = {f.name: f.metadata["rule"] for f in fields(TrainConfig)}

#: Named recipes: :class:`TrainConfig` fields (and ``dev_size``) over the defaults.
PRESETS = {
    "default": {},
    # 784-800-10, Nesterov momentum with a one-cycle schedule, trained on all but 1000 of
    # the 60k MNIST training images: 98.5% test accuracy (see docs/guide/training.md for the spread).
    "best": dict(
        hidden=(800,),
        epochs=30,
        lr=0.2,
        optimizer="nesterov",
        momentum=0.9,
        weight_decay=1e-4,
        schedule="onecycle",
        dev_size=1000,
    ),
    # best's network and recipe, on affine-distorted digits for 12 epochs: 99.1% MNIST test
    # accuracy (median of 3 seeds) in about half of best's time.  Not best itself: the same
    # distortions cost Fashion-MNIST 3 points.
    "max": dict(
        hidden=(800,),
        epochs=12,
        lr=0.2,
        optimizer="nesterov",
        momentum=0.9,
        weight_decay=1e-4,
        schedule="onecycle",
        dev_size=1000,
        augment="affine",
    ),
    # A deeper network on elastically distorted digits (Simard et al.'s field, made smoother
    # than the default as Ciresan et al. 2010 did: sigma 6) for 150 epochs, 6.5 minutes of
    # training on 2 cores (a margin under 10 for a busy host): 99.6% MNIST test accuracy,
    # median of 3 seeds.  docs/guide/records.md has how it was chosen and what was tried.
    "record": dict(
        hidden=(1000, 500),
        epochs=150,
        lr=0.1,
        optimizer="nesterov",
        momentum=0.9,
        weight_decay=5e-5,
        schedule="onecycle",
        dev_size=1000,
        augment="elastic",
        augment_alpha=36.0,
        augment_sigma=6.0,
    ),
    # record's network and optimizer for clothing (Fashion-MNIST): no rotation, zoom, shear
    # or shift, but mirror images and dropout, which together let it train longer than
    # plain training can before it overfits.  Chosen on a 5000-image dev split.
    "record-fashion": dict(
        hidden=(1000, 500),
        epochs=80,
        lr=0.1,
        optimizer="nesterov",
        momentum=0.9,
        weight_decay=5e-5,
        schedule="onecycle",
        dev_size=1000,
        dropout=0.2,
        augment="affine",
        augment_rotation=0.0,
        augment_scale=0.0,
        augment_shear=0.0,
        augment_shift=0.0,
        augment_flip=0.5,
    ),
}

#: One line per preset, for ``--help``.
PRESET_HELP = {
    "default": "784-256-10, plain SGD, 15 epochs (fast)",
    "best": "784-800-10, Nesterov, one-cycle, 30 epochs: 98.5% on MNIST",
    "max": "best's recipe on affine-distorted digits, 12 epochs: 99.1% on MNIST (28x28 images only)",
    "record": "784-1000-500-10 on elastically distorted digits, 150 epochs (6.5 minutes on 2 cores): 99.6% on MNIST",
    "record-fashion": "record's network with dropout on mirrored clothes, 80 epochs: 90.9% on Fashion-MNIST",
}
