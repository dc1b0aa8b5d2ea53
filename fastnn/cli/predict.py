"""``fastnn predict MODEL INPUT``: predict with a saved model, one image or a batch.

Also ``python scripts/predict.py MODEL INPUT [--out FILE]``.

``MODEL`` is a model file written by :func:`fastnn.save_network` (``train.py``
writes ``runs/latest/model.npz``).  ``INPUT`` is, by its extension:

* ``.npy``: one image (``(784,)`` or ``(28, 28)``) or a batch (``(n, 784)`` or
  ``(n, 28, 28)``), read with :func:`fastnn.predict.prepare_image` 's pixel
  rule (integers are 0-255, floats up to 1 are already normalised).  For a
  model with another number of features ``d`` (one trained with
  ``fastnn.MLPClassifier``, say): ``(d,)`` or ``(n, d)``, values used as they are.
* ``.csv``: a Kaggle Digit Recognizer ``test.csv`` (``pixel0..pixel783``), or
  a ``train.csv``, whose labels are then used to print the accuracy;
* anything else: an image file (PNG, JPEG, ...), made MNIST-style by
  :func:`fastnn.images.read_image` (grayscale, inverted if dark-on-light,
  cropped, scaled to 20 px, centred by centre of mass in 28x28).

The model may have any depth and activation; it must give one class per image
(a softmax head, or one logistic output: :func:`fastnn.predict.check_classifier`).
For one image it prints the predicted label and the top probabilities.  For a
batch (a CSV, or a ``.npy`` batch) it writes a Kaggle submission
``ImageId,Label`` (ImageId from 1) to ``--out`` (default ``submission.csv``),
atomically, and prints one summary line; ``--out`` with one image writes the
same one-row file.

Any problem (a missing or unreadable model, a model that does not classify, a
file that is not an image, an array of the wrong shape, an unwritable
``--out``) ends with one ``error: ...`` line on stderr and exit status 2,
nothing on stdout, and no file written.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

from ..errors import FastnnError
from ..pixels import N_PIXELS, SHAPES, scale_bytes

HELP = "predict with a saved model: an image file, a .npy array or a Kaggle CSV"
DEFAULT_OUT = "submission.csv"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn predict``."""
    p.add_argument("model", help="model file written by fastnn.save_network (e.g. runs/latest/model.npz)")
    p.add_argument("input", help="a PNG/JPEG image, a .npy array (one image or a batch), or a Kaggle CSV")
    p.add_argument("--out", default=None, help=f"where to write the ImageId,Label CSV (batches: default {DEFAULT_OUT})")
    p.add_argument("--top", type=int, default=3, help="probabilities to print for one image (default %(default)s)")


def load_input(path: Path, net) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """Read ``path`` as network inputs: returns ``(X (n, d) float32, single image?, labels or None)``."""
    d = net.n_features
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from ..data import read_kaggle_csv

        _need_pixels(d, path)
        X, y = read_kaggle_csv(path)
        return scale_bytes(X), False, y
    if suffix == ".npy":
        return (*_load_npy(path, d), None)
    from ..images import read_image

    _need_pixels(d, path)
    return read_image(path).reshape(1, N_PIXELS), True, None


def _need_pixels(d: int, path: Path) -> None:
    if d != N_PIXELS:
        raise FastnnError(f"the model expects {d} features, but {path.name} holds 28x28 images ({N_PIXELS} pixels)")


def _load_npy(path: Path, d: int) -> tuple[np.ndarray, bool]:
    from ..predict import prepare_image, prepare_images

    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FastnnError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise FastnnError(f"{path} is a folder, not a .npy file") from None
    except (OSError, ValueError, EOFError) as exc:
        why = "it holds Python objects, which are never loaded" if "pickle" in str(exc) else exc
        raise FastnnError(f"{path} is not a readable .npy array ({why})") from None
    if not isinstance(arr, np.ndarray):
        raise FastnnError(f"{path} is an .npz archive, not a single .npy array")
    if d == N_PIXELS:
        if arr.shape in SHAPES:
            return prepare_image(arr)[None, :], True
        if arr.ndim in (2, 3) and arr.shape[1:] in SHAPES:
            return prepare_images(arr), False
        raise FastnnError(
            f"{path} holds an array of shape {arr.shape}; expected one image "
            f"({N_PIXELS},) or (28, 28), or a batch (n, {N_PIXELS}) or (n, 28, 28)"
        )
    # A model on other features: values as they are, only checked.
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise FastnnError(f"{path} holds {arr.dtype} values; expected numbers")
    if arr.shape == (d,):
        arr, single = arr[None, :], True
    elif arr.ndim == 2 and arr.shape[1] == d and arr.shape[0] > 0:
        single = False
    else:
        raise FastnnError(f"{path} holds an array of shape {arr.shape}; the model expects ({d},) or (n, {d})")
    with np.errstate(over="ignore"):
        X = arr.astype(np.float32)
    if not np.isfinite(X).all():
        raise FastnnError(f"{path} contains NaN or infinite values (or values beyond float32)")
    return X, single


def submission(labels: np.ndarray) -> str:
    """The Kaggle submission text: header ``ImageId,Label``, ImageId counting from 1."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # quotes string labels holding commas
    writer.writerow(["ImageId", "Label"])
    writer.writerows(enumerate(labels.tolist(), start=1))
    return buf.getvalue()


def _describe(net, k: int) -> str:
    """``label`` plus its display name when that differs (e.g. ``9 (Ankle boot)``)."""
    label, name = net.classes[k].item(), net.class_names[k]
    return f"{label} ({name})" if str(label) != name else f"{label}"


def predict(args: argparse.Namespace) -> tuple[str, str | None]:
    """Everything but the side effects: returns (text for stdout, CSV text to write or None)."""
    from ..modelfile import load_network
    from ..predict import check_classifier, class_probabilities

    if args.top < 1:
        raise FastnnError(f"--top must be at least 1, got {args.top}")
    net, _ = load_network(args.model)
    check_classifier(net)  # before reading the input: a regression model is refused whatever it is
    X, single, y = load_input(Path(args.input), net)
    probs = class_probabilities(net, X)
    best = probs.argmax(axis=1)
    labels = np.asarray(net.classes)[best]
    table = submission(labels) if (args.out is not None or not single) else None
    if single:
        order = np.argsort(-probs[0], kind="stable")[: args.top]
        lines = [f"label: {_describe(net, int(best[0]))}", "top probabilities:"]
        lines += [f"  {_describe(net, int(k))}: {probs[0, k]:.4f}" for k in order]
    else:
        lines = [f"predicted {len(labels)} images; wrote {args.out or DEFAULT_OUT}"]
        if y is not None:
            lines.append(f"accuracy on the file's labels: {np.mean(labels == y):.4f}")
    return "\n".join(lines), table


def run(args: argparse.Namespace) -> None:
    """``fastnn predict``: print the prediction; write the submission CSV for a batch or ``--out``."""
    from .._atomic import atomic_write_text

    text, table = predict(args)
    if table is not None:
        out = Path(args.out or DEFAULT_OUT)
        try:
            atomic_write_text(out, table)
        except OSError as exc:
            raise FastnnError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(text)
