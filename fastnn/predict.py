"""Predicting labels for single images or batches: pure, no plotting.

Images are turned into network inputs by :mod:`fastnn.pixels`' one rule
(raw 0-255 integers and their ``/ 255`` floats give the same prediction);
:func:`prepare_image` and :func:`prepare_images` are that rule, re-exported
here for callers who predict.  Figures of a prediction are drawn by
:func:`fastnn.plots.show_sample`, on top of this module.
"""

from __future__ import annotations

import numpy as np

from .network import Network
from .pixels import prepare_image, prepare_images

__all__ = ["predict_batch", "predict_image", "prepare_image", "prepare_images"]


def predict_image(net: Network, image) -> tuple:
    """Predict one image: returns ``(label, probs)``.

    ``label`` is ``net.classes`` at the most probable output, as a plain
    Python int or str; ``probs`` is a float32 ``(c,)`` array summing to 1.
    """
    probs = net.predict_proba(prepare_image(image)[None, :])[0]
    return net.classes[int(probs.argmax())].item(), probs


def predict_batch(net: Network, images) -> tuple[np.ndarray, np.ndarray]:
    """Predict a batch: returns ``(labels (n,), probs (n, c))``, labels taken from ``net.classes``."""
    probs = net.predict_proba(prepare_images(images))
    return np.asarray(net.classes)[probs.argmax(axis=1)], probs
