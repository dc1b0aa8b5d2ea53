"""Reading a user's own digit image (PNG, JPEG, ...) into a 28x28 MNIST-style input.

MNIST digits are white ink on a black background, scaled so that the longer
side of the ink is 20 pixels and placed in a 28x28 box so that the ink's
centre of mass sits at the box's centre.  A photo or a drawing fed to a
network trained on MNIST must look the same, so :func:`read_image` does, in
order (:func:`mnist_style` is the same on an array):

1. **grayscale**: Pillow converts the image to luminance.  A transparent
   background (a canvas export: ink in the colour channels, alpha 0 elsewhere)
   is filled with the colour that contrasts with the ink first.
2. **polarity**: if the image's border is light (median brightness of the
   outer 5% frame above one half) the image is dark-on-light and is inverted;
   MNIST is light-on-dark.
3. **background**: the border's level is subtracted and the result stretched
   to [0, 1], so a grey paper photo still has a black background; values
   below :data:`INK_THRESHOLD` become 0.  An image with no ink left is refused.
4. **crop** to the bounding box of the ink;
5. **scale** it (Lanczos, anti-aliased) so the longer side is 20 pixels,
   keeping the aspect ratio;
6. **centre**: paste it into a 28x28 black box so that its centre of mass is
   at row 14, column 14 (pixel indices; the mean centre of MNIST's own test
   images, measured: 13.99, 14.01).

The result is float32 in [0, 1], ready for :func:`fastnn.predict_image`.
Pillow is needed for reading files only; it is imported when one is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import FastnnError
from .pixels import SIDE  # MNIST's box

INK_SIDE = 20  # the longer side of the ink after scaling
CENTRE = 14.0  # where the ink's centre of mass goes (row and column)
INK_THRESHOLD = 0.2  # after background removal, values below this are background
BORDER = 0.05  # the frame whose brightness decides polarity and background level

__all__ = ["read_image", "mnist_style", "SIDE"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file and return it MNIST-style: float32 ``(28, 28)`` in [0, 1].

    Raises :class:`FastnnError` for a missing file, a file Pillow cannot read as
    an image, or an image with no ink (blank, or one flat colour).
    """
    gray = _read_gray(Path(path))
    try:
        return mnist_style(gray)
    except FastnnError as exc:
        raise FastnnError(f"{path}: {exc}") from None


def mnist_style(image) -> np.ndarray:
    """Turn a 2-D grayscale image into a 28x28 MNIST-style input (steps 2-6 of the module).

    ``image``: integers are 0-255 (0 black), floats are in [0, 1].  Returns
    float32 ``(28, 28)`` in [0, 1], white ink on black.
    """
    gray = np.asarray(image)
    if gray.ndim != 2 or 0 in gray.shape:
        raise FastnnError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    if gray.dtype == np.bool_ or not np.issubdtype(gray.dtype, np.number):
        raise FastnnError(f"expected numeric pixels, got dtype {gray.dtype}")
    gray = gray.astype(np.float64)
    if np.issubdtype(np.asarray(image).dtype, np.integer):
        gray /= 255.0
    if not np.isfinite(gray).all():
        raise FastnnError("the image contains NaN or infinite values")

    border = _border(gray)
    ink = 1.0 - gray if np.median(border) > 0.5 else gray
    background = float(np.median(_border(ink)))
    span = float(ink.max()) - background
    if span < 0.1:
        raise FastnnError("no digit found: nothing in the image stands out from its background")
    ink = np.clip((ink - background) / span, 0.0, 1.0)
    ink[ink < INK_THRESHOLD] = 0.0

    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    h, w = ink.shape
    scale = INK_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (width, height)
    ink = np.clip(_resize(ink.astype(np.float32), size), 0.0, 1.0)

    mass = ink.sum()
    if mass <= 0:
        raise FastnnError("no digit found: the ink vanished when scaled to 20 pixels")
    h, w = ink.shape
    r = (ink.sum(axis=1) * np.arange(h)).sum() / mass
    c = (ink.sum(axis=0) * np.arange(w)).sum() / mass
    top = int(np.clip(round(CENTRE - r), 0, SIDE - h))
    left = int(np.clip(round(CENTRE - c), 0, SIDE - w))
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + h, left : left + w] = ink
    return out


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of the outer frame, ``BORDER`` of the shorter side wide (at least 1)."""
    k = max(1, round(BORDER * min(a.shape)))
    if 2 * k >= min(a.shape):
        return a.ravel()
    return np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[k:-k, :k].ravel(), a[k:-k, -k:].ravel()])


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def _read_gray(path: Path) -> np.ndarray:
    """Open ``path`` with Pillow; return its luminance as float64 in [0, 1] (0 black)."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:  # pragma: no cover - depends on the environment
        raise FastnnError("reading image files needs Pillow: pip install pillow") from None
    if path.is_dir():
        raise FastnnError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)  # phone photos: apply the stored rotation
    except FileNotFoundError:
        raise FastnnError(f"image file not found: {path}") from None
    except UnidentifiedImageError:
        raise FastnnError(f"{path} is not an image file Pillow can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError as exc:
        raise FastnnError(f"{path}: refusing to read a huge image ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or damaged files
        raise FastnnError(f"{path}: cannot read the image ({exc})") from None

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit and float images
        a = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and a.max() <= 1 else 255.0 if a.max() <= 255 else 65535.0
        return np.clip(a / top, 0.0, 1.0)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    rgba = img.convert("RGBA")
    gray = np.asarray(rgba.convert("L"), dtype=np.float64) / 255.0
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
    if alpha.min() == 1.0:
        return gray
    if alpha.sum() == 0:
        raise FastnnError(f"{path}: the image is fully transparent")
    # Fill the transparent part with the colour that contrasts with the (opaque) ink.
    ink_level = float((alpha * gray).sum() / alpha.sum())
    fill = 1.0 if ink_level < 0.5 else 0.0
    return alpha * gray + (1.0 - alpha) * fill
