"""Image geometry and the one pixel rule: what every part of fastnn means by an image.

An image is MNIST's: 28x28 grey levels, white ink on black, stored row-major
as 784 values.  Networks take them as float32 in [0, 1].  Images arrive as raw
0-255 integers, as already scaled floats, or as floats that are raw values, so
one rule turns any of them into network inputs, and a raw ``uint8`` image and
its ``/ 255`` version always give the same prediction:

* integer arrays (``uint8``, ``int64``, ...) are raw 0-255 pixels and are
  divided by 255;
* float arrays whose maximum is <= 1 are taken as already normalised;
* float arrays whose maximum is in (1, 255] are raw pixels and are divided by 255;
* negative, NaN, infinite or > 255 values, non-numeric arrays and wrong shapes
  raise :class:`FastnnError`.

A float image whose pixels are all 0 or 1 is therefore read as normalised.
For a batch the rule is decided once for the whole batch, not per image.

This module imports nothing of fastnn but its errors, so anything may import it.
"""

from __future__ import annotations

import numpy as np

from .errors import FastnnError

SIDE = 28  # an image is SIDE x SIDE pixels
N_PIXELS = SIDE * SIDE  # the network's input width for images
SHAPES = ((N_PIXELS,), (SIDE, SIDE))  # the shapes one image may come in

__all__ = ["N_PIXELS", "SIDE", "normalise", "prepare_image", "prepare_images", "scale_bytes"]


def scale_bytes(X: np.ndarray) -> np.ndarray:
    """Raw uint8 pixels -> a new C-contiguous float32 array ``X / 255`` (no float64 temporary)."""
    if X.dtype != np.uint8:
        # Scaling floats that are already in [0, 1] again would silently ruin training.
        raise FastnnError(f"expected uint8 pixels (0..255), got an array of {X.dtype}")
    out = np.empty(X.shape, dtype=np.float32)
    np.divide(X, np.float32(255.0), out=out, dtype=np.float32)
    return out


def normalise(arr: np.ndarray) -> np.ndarray:
    """Apply the pixel rule (see the module) to a whole array of any shape; returns float32."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise FastnnError(f"pixel values must be integers or floats, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise FastnnError("image contains NaN or infinite pixel values")
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise FastnnError(f"pixel values must be >= 0, found {lo}")
    if hi > 255:
        raise FastnnError(f"pixel values must be at most 255, found {hi}")
    if arr.dtype == np.uint8:
        return scale_bytes(arr)
    out = arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer) or hi > 1:
        out /= np.float32(255)
    return out


def prepare_image(image) -> np.ndarray:
    """One image (784-vector or 28x28) -> normalised float32 ``(784,)``; see the module's rule."""
    arr = np.asarray(image)
    if arr.shape not in SHAPES:
        raise FastnnError(f"an image must have shape ({N_PIXELS},) or ({SIDE}, {SIDE}), got {arr.shape}")
    return normalise(arr).reshape(N_PIXELS)


def prepare_images(images) -> np.ndarray:
    """A batch ``(n, 784)`` or ``(n, 28, 28)`` -> normalised float32 ``(n, 784)``; see the module's rule."""
    arr = np.asarray(images)
    if arr.ndim not in (2, 3) or arr.shape[1:] not in SHAPES:
        raise FastnnError(f"a batch of images must have shape (n, {N_PIXELS}) or (n, {SIDE}, {SIDE}), got {arr.shape}")
    if arr.shape[0] == 0:
        raise FastnnError("the batch of images is empty")
    return normalise(arr).reshape(arr.shape[0], N_PIXELS)
