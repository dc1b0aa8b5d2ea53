"""Turning an ``/api/predict`` request body into the 28x28 image the network sees, or a clear refusal.

Everything here is pure and synchronous (no web framework), so it is tested
directly and can never take the server down: every problem a request can have
is a :class:`RequestError` carrying the HTTP status and a one-line message.

A body is JSON, at most :data:`MAX_BODY_BYTES`, holding exactly one of:

* ``"pixels"``: a flat list of 784 numbers in 0..255, row-major 28x28, white
  ink on black as in MNIST.  They become network inputs by fastnn's one pixel
  rule (:mod:`fastnn.pixels`: integers are raw 0-255; floats all <= 1 are
  taken as already normalised), exactly as ``fastnn predict`` reads a
  ``.npy`` array of the same values;
* ``"image"``: a ``data:image/...;base64,...`` URL (a canvas snapshot, PNG,
  JPEG, GIF, BMP or WebP), made MNIST-style by :func:`fastnn.images.read_image`,
  the code ``fastnn predict`` runs on image files.  Its header is checked
  before anything is decoded: at most :data:`MAX_IMAGE_PIXELS` pixels, so a
  small file declaring a huge image (a decompression bomb) is refused unread.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import re
import tempfile

import numpy as np

from ..errors import FastnnError
from ..pixels import N_PIXELS, SIDE, prepare_image

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a 280x280 canvas PNG is ~10-30 kB, 784 numbers ~4 kB
# Seconds an admitted request's body may take to arrive: a 30 kB snapshot takes milliseconds,
# and a client that trickles its body must not hold a queue slot for long.
BODY_SECONDS = 10.0
MAX_IMAGE_PIXELS = 1 << 21  # ~2 Mpx (e.g. 1448x1448): far above any drawing pad, far below a bomb
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # the only decoders an upload may reach
_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]{1,40};base64,", re.ASCII)

__all__ = ["BODY_SECONDS", "MAX_BODY_BYTES", "MAX_IMAGE_PIXELS", "RequestError", "parse_json", "image_from_payload"]


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx) and a one-line ``message`` for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _no_constants(name: str):
    raise RequestError(400, f"the body is not valid JSON ({name} is not a JSON number)")


def parse_json(body: bytes):
    """The JSON value in ``body`` (UTF-8); NaN/Infinity literals, bad UTF-8 and deep nesting are refused."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None


def image_from_payload(payload) -> np.ndarray:
    """The request's image as the network sees it: float32 ``(28, 28)`` in [0, 1]."""
    if not isinstance(payload, dict):
        raise RequestError(
            400, 'expected a JSON object: {"pixels": [784 numbers]} or {"image": "data:image/png;base64,..."}'
        )
    given = [key for key in ("pixels", "image") if key in payload]
    if len(given) != 1:
        raise RequestError(400, 'give exactly one of "pixels" (784 numbers 0-255) or "image" (a data: URL)')
    if given[0] == "pixels":
        return _from_pixels(payload["pixels"])
    return _from_data_url(payload["image"])


def _from_pixels(values) -> np.ndarray:
    if not isinstance(values, list):
        raise RequestError(400, f'"pixels" must be a list of {N_PIXELS} numbers, got {_json_type(values)}')
    if len(values) != N_PIXELS:
        raise RequestError(400, f'"pixels" must hold {N_PIXELS} numbers (28x28, row-major), got {len(values)}')
    kinds = set(map(type, values))  # the common case, checked whole (bools are their own type)
    if kinds <= {int, float}:
        try:
            arr = np.array(values, dtype=np.float64 if float in kinds else np.int64)
        except OverflowError:  # an integer past int64: the loop below names it
            arr = None
        if arr is not None and arr.min() >= 0 and arr.max() <= 255:
            return prepare_image(arr).reshape(SIDE, SIDE)
    floats = False
    for i, v in enumerate(values):
        if type(v) is float:
            floats = True
        elif type(v) is not int:  # bools, strings, null, lists, objects
            raise RequestError(400, f'"pixels"[{i}] is {_json_type(v)}, not a number')
        if not (0 <= v <= 255):  # NaN fails this too (and is refused by parse_json already)
            raise RequestError(400, f'"pixels"[{i}] is {v!r}; pixel values must be in 0..255')
    arr = np.array(values, dtype=np.float64 if floats else np.int64)
    try:
        return prepare_image(arr).reshape(SIDE, SIDE)
    except FastnnError as exc:  # pragma: no cover - every case is refused above
        raise RequestError(400, str(exc)) from None


def _from_data_url(url) -> np.ndarray:
    if not isinstance(url, str):
        raise RequestError(400, f'"image" must be a data: URL string, got {_json_type(url)}')
    head = _DATA_URL.match(url)
    if head is None:
        raise RequestError(400, '"image" must be a data URL: data:image/png;base64,...')
    try:
        data = base64.b64decode(url[head.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, '"image" does not hold valid base64 data') from None
    _check_image(data)
    return _read_like_predict(data)


def _check_image(data: bytes) -> None:
    """Refuse what is not a small image of a known format, from its header alone (nothing decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            width, height = img.size
    except Image.DecompressionBombError:  # Pillow's own ceiling, far above ours
        raise RequestError(413, f'"image" is over the limit of {MAX_IMAGE_PIXELS} pixels') from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise RequestError(400, f'"image" is not a {", ".join(IMAGE_FORMATS)} image Pillow can read') from None
    if width * height > MAX_IMAGE_PIXELS:
        raise RequestError(413, f'"image" is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS}')


def _read_like_predict(data: bytes) -> np.ndarray:
    """Decode and make MNIST-style with :func:`fastnn.images.read_image`, as ``fastnn predict`` does."""
    from ..images import read_image

    fd, name = tempfile.mkstemp(prefix="fastnn-serve-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return read_image(name)
    except FastnnError as exc:
        # read_image names the file; the client knows it only as "image"
        message = str(exc).replace(f"{name}: ", "").replace(name, "the image")
        status = 422 if "no digit" in message or "transparent" in message else 400
        raise RequestError(status, f'"image": {message}') from None
    except (OSError, ValueError, MemoryError) as exc:  # a decoder failing in a way read_image does not expect
        raise RequestError(400, f'"image" cannot be decoded ({type(exc).__name__})') from None
    finally:
        os.unlink(name)


def _json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "a number" if isinstance(v, (int, float)) and math.isfinite(v) else type(v).__name__
