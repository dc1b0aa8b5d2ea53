"""Predicting labels for single images or batches: pure, no plotting.

Images are turned into network inputs by :mod:`fastnn.pixels`' one rule
(raw 0-255 integers and their ``/ 255`` floats give the same prediction);
:func:`prepare_image` and :func:`prepare_images` are that rule, re-exported
here for callers who predict.  Figures of a prediction are drawn by
:func:`fastnn.plots.show_sample`, on top of this module.

Prediction here means one class per image, for a network of any depth whose
head gives class probabilities (:func:`class_probabilities`): a softmax
head's, or a single logistic output's (``1 - p`` for the first class, ``p``
for the second).  The label is the most probable class.  A network that gives
a 0/1 label per output (several logistic outputs) or values (the ``identity``
and ``exp`` heads) has no one class per image: these functions refuse it with
a :class:`FastnnError` (its own :meth:`~fastnn.network.Network.predict` gives
its outputs).
"""

from __future__ import annotations

import numpy as np

from .errors import FastnnError
from .network import Network
from .pixels import prepare_image, prepare_images

__all__ = [
    "check_classifier",
    "class_probabilities",
    "predict_batch",
    "predict_image",
    "prepare_image",
    "prepare_images",
]


def check_classifier(net: Network) -> None:
    """Raise a :class:`FastnnError` unless ``net`` gives one class per input (see the module)."""
    if net.head == "softmax" or (net.head == "logistic" and net.n_outputs == 1):
        return
    gives = "a 0/1 label for each of its outputs" if net.head == "logistic" else "values, not classes"
    raise FastnnError(
        f"this network ({net.describe()}) gives {gives}; fastnn predicts one class per "
        f"image (use Network.predict from Python for its outputs)"
    )


def class_probabilities(net: Network, X) -> np.ndarray:
    """Each class's probability ``(n, n_classes)`` for network inputs ``X (n, d)``; rows sum to 1."""
    check_classifier(net)
    probs = net.predict_proba(X)
    if net.head == "logistic":  # one output p = P(classes[1])
        probs = np.hstack([1 - probs, probs])
    return probs


def predict_image(net: Network, image) -> tuple:
    """Predict one image: returns ``(label, probs)``.

    ``label`` is ``net.classes`` at the most probable class, as a plain
    Python int or str; ``probs`` is a ``(n_classes,)`` array summing to 1.
    """
    probs = class_probabilities(net, prepare_image(image)[None, :])[0]
    return net.classes[int(probs.argmax())].item(), probs


def predict_batch(net: Network, images) -> tuple[np.ndarray, np.ndarray]:
    """Predict a batch: returns ``(labels (n,), probs (n, n_classes))``, labels taken from ``net.classes``."""
    probs = class_probabilities(net, prepare_images(images))
    return np.asarray(net.classes)[probs.argmax(axis=1)], probs
