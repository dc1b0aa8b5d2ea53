"""Predicting digits for single images or batches, with the input rule spelled out.

Networks work on normalised pixels in [0, 1], but images arrive in many forms.
:func:`prepare_image` and :func:`prepare_images` turn them into network inputs
with one documented rule, so a raw ``uint8`` image and its ``/ 255`` version
always give the same prediction:

* integer arrays (``uint8``, ``int64``, ...) are raw 0-255 pixels and are
  divided by 255;
* float arrays whose maximum is <= 1 are taken as already normalised;
* float arrays whose maximum is in (1, 255] are raw pixels and are divided by 255;
* negative, NaN, infinite or > 255 values, non-numeric arrays and wrong shapes
  raise :class:`FastnnError`.

A float image whose pixels are all 0 or 1 is therefore read as normalised.
For a batch the rule is decided once for the whole batch, not per image.
"""

from __future__ import annotations

import numpy as np

from .errors import FastnnError
from .model import Network

SIDE = 28
N_PIXELS = SIDE * SIDE


def _normalise(arr: np.ndarray) -> np.ndarray:
    """Apply the module's pixel rule to a whole array; returns float32."""
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise FastnnError(f"pixel values must be integers or floats, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise FastnnError("image contains NaN or infinite pixel values")
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise FastnnError(f"pixel values must be >= 0, found {lo}")
    if hi > 255:
        raise FastnnError(f"pixel values must be at most 255, found {hi}")
    out = arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer) or hi > 1:
        out /= np.float32(255)
    return out


def prepare_image(image) -> np.ndarray:
    """One image (784-vector or 28x28) -> normalised float32 ``(784,)``; see the module rule."""
    arr = np.asarray(image)
    if arr.shape not in ((N_PIXELS,), (SIDE, SIDE)):
        raise FastnnError(f"an image must have shape ({N_PIXELS},) or ({SIDE}, {SIDE}), got {arr.shape}")
    return _normalise(arr).reshape(N_PIXELS)


def prepare_images(images) -> np.ndarray:
    """A batch ``(n, 784)`` or ``(n, 28, 28)`` -> normalised float32 ``(n, 784)``; see the module rule."""
    arr = np.asarray(images)
    if arr.ndim not in (2, 3) or arr.shape[1:] not in ((N_PIXELS,), (SIDE, SIDE)):
        raise FastnnError(f"a batch of images must have shape (n, {N_PIXELS}) or (n, {SIDE}, {SIDE}), "
                          f"got {arr.shape}")
    if arr.shape[0] == 0:
        raise FastnnError("the batch of images is empty")
    return _normalise(arr).reshape(arr.shape[0], N_PIXELS)


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


def test_prediction(index: int, net: Network, X, y=None, path=None, show: bool = False) -> dict:
    """Predict sample ``index`` of ``X`` and print it, like the original notebook.

    Prints ``Prediction: p, Label: l`` (just ``Prediction: p`` without ``y``;
    ``y`` holds labels in the same terms as ``net.classes``).  Saves the image
    with its probabilities to ``path`` as a PNG if given, and opens a window if
    ``show``.  Returns ``{"index", "prediction", "label", "probs"}`` with
    plain Python values.
    """
    X = np.asarray(X)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise FastnnError(f"index must be an integer, got {index!r}")
    if X.ndim < 1 or not 0 <= index < X.shape[0]:
        raise FastnnError(f"index {index} is out of range for {X.shape[0] if X.ndim else 0} samples")
    index = int(index)
    image = prepare_image(X[index])
    prediction, probs = predict_image(net, image)
    label = None
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise FastnnError(f"labels must have shape ({X.shape[0]},) to match the samples, got {y.shape}")
        label = y[index].item()
        print(f"Prediction: {prediction}, Label: {label}")
    else:
        print(f"Prediction: {prediction}")

    if path is not None or show:
        # Imported here so that predicting never pays for loading matplotlib.
        from . import plots
        kwargs = dict(probs=probs, class_names=net.class_names)
        if path is not None:
            plots.plot_prediction(image, prediction, label, path, **kwargs)
        if show:
            plots.show_prediction(image, prediction, label, **kwargs)
    return {"index": index, "prediction": prediction, "label": label,
            "probs": [float(p) for p in probs]}


# The name comes from the notebook; stop pytest collecting it as a test when imported.
test_prediction.__test__ = False
