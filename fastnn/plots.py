"""PNG plots of training histories, confusion matrices, predictions and first-layer weights.

Figures are built with :class:`matplotlib.figure.Figure` directly rather than
pyplot, so plotting works headless, touches no global state and leaks no
figures.  Each ``plot_*`` function renders to memory and then writes the PNG
atomically, so a reader never sees half a file; it returns the path written.
A destination that cannot be written raises :class:`FastnnError` and leaves
nothing behind.
"""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, StrMethodFormatter

from ._atomic import atomic_write_bytes
from .errors import FastnnError
from .pixels import N_PIXELS, SIDE, prepare_image, prepare_images

DPI = 100


def _save(fig: Figure, path) -> Path:
    """Render ``fig`` as PNG and write it atomically to ``path``."""
    path = Path(path)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise FastnnError(f"cannot write plot to {path}: {exc.strerror or exc}") from exc
    return path


def _names(class_names, n: int) -> list[str]:
    """Display names for ``n`` classes: the given ones, or ``"0".."n-1"``."""
    if class_names is None:
        return [str(k) for k in range(n)]
    if len(class_names) != n:
        raise FastnnError(f"got {len(class_names)} class names for {n} classes")
    return [str(name) for name in class_names]


def plot_history(history, path) -> Path:
    """Accuracy and loss per epoch, from ``History.to_dict()`` (a ``History`` also works).

    Left panel: train accuracy, and dev accuracy where recorded.  Right panel:
    mean train loss per epoch on a log scale, plus the per-step losses as a
    faint line at fractional epochs when the history has ``steps``.  A history
    with zero epochs gives a valid figure saying so rather than an error,
    since training for zero epochs is a legal run.
    """
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    fig = Figure(figsize=(10, 4), dpi=DPI, layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    try:
        epochs = list(history.get("epochs") or [])
        steps = list(history.get("steps") or [])
        last_epoch = epochs[-1]["epoch"] if epochs else 0
        if epochs:
            _draw_accuracy(ax_acc, epochs)
            _draw_loss(ax_loss, epochs, steps)
    except (AttributeError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise FastnnError(f"not a training history (as from History.to_dict()): {exc!r}") from exc
    if not epochs:
        for ax in (ax_acc, ax_loss):
            ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center", transform=ax.transAxes)
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_loss.set(title="Training loss", xlabel="epoch", ylabel="cross-entropy")
    for ax in (ax_acc, ax_loss):
        # From 0 so that per-step losses of the first epoch and a lone epoch both fit.
        ax.set_xlim(0, last_epoch + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _draw_accuracy(ax, epochs: list) -> None:
    x = [row["epoch"] for row in epochs]
    ax.plot(x, [100 * row["train_accuracy"] for row in epochs], marker="o", label="train")
    dev = [(row["epoch"], 100 * row["dev_accuracy"]) for row in epochs if row.get("dev_accuracy") is not None]
    if dev:
        ax.plot(*zip(*dev), marker="s", label="dev")
    ax.legend()


def _draw_loss(ax, epochs: list, steps: list) -> None:
    if steps:
        # Training records steps through the end of the last epoch, so this
        # ratio is the number of steps per epoch.
        steps_per_epoch = steps[-1]["step"] / steps[-1]["epoch"]
        ax.plot(
            [s["step"] / steps_per_epoch for s in steps],
            [s["train_loss"] for s in steps],
            color="C0",
            alpha=0.3,
            linewidth=1,
            label="per logged step",
        )
    ax.plot(
        [row["epoch"] for row in epochs],
        [row["train_loss"] for row in epochs],
        color="C0",
        marker="o",
        label="epoch mean",
    )
    # Log scale: otherwise late-epoch progress is flattened by the first steps'
    # loss.  Plain labels (0.1, 0.5) read better than matplotlib's 10^-1 style.
    ax.set_yscale("log")
    plain = StrMethodFormatter("{x:g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    if high / low < 100:  # under two decades, powers of ten alone are too few labels
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend()


def plot_confusion_matrix(cm, class_names, path, title: str = "Confusion matrix") -> Path:
    """Heatmap of a confusion matrix (rows true, columns predicted) with each count written in."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise FastnnError(f"a confusion matrix must be square, got shape {cm.shape}")
    c = cm.shape[0]
    names = _names(class_names, c)
    side = max(4.0, 0.55 * c + 1.5)  # keeps cells big enough for 4-digit counts
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    threshold = cm.max() / 2
    fontsize = 9 if c <= 12 else 6
    fmt = "d" if np.issubdtype(cm.dtype, np.integer) else ".2f"  # counts, or a normalised matrix
    for i in range(c):
        for j in range(c):
            colour = "white" if cm[i, j] > threshold else "black"
            ax.text(j, i, f"{cm[i, j]:{fmt}}", ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_xticks(range(c), names)
    ax.set_yticks(range(c), names)
    ax.set(xlabel="Predicted", ylabel="True", title=title)
    return _save(fig, path)


def plot_prediction(image784, pred_label, true_label, path, probs=None, class_names=None) -> Path:
    """The 28x28 image titled ``Predicted: p  True: t``, with a probability bar chart if ``probs``.

    ``true_label`` may be None.  The image may be raw or normalised (the rule
    of :mod:`fastnn.pixels`).  A wrong prediction gets a red title.
    """
    figsize = (7, 3.4) if probs is not None else (3.4, 3.6)
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    _draw_prediction(fig, image784, pred_label, true_label, probs, class_names)
    return _save(fig, path)


def show_prediction(image784, pred_label, true_label, probs=None, class_names=None) -> None:
    """Show :func:`plot_prediction`'s figure in a window (or inline in a notebook) via pyplot."""
    import matplotlib.pyplot as plt  # only here: showing needs pyplot's interactive backend

    fig = plt.figure(figsize=(7, 3.4) if probs is not None else (3.4, 3.6), layout="constrained")
    _draw_prediction(fig, image784, pred_label, true_label, probs, class_names)
    plt.show()


def show_sample(net, X, index: int, y=None, *, path=None, show: bool = False) -> dict:
    """Predict sample ``index`` of ``X`` with ``net`` and draw it, as the notebook's ``test_prediction`` did.

    ``X`` holds images (raw or normalised, :mod:`fastnn.pixels`' rule); ``y``,
    if given, their labels in the same terms as ``net.classes``.  Saves the
    image with its probabilities to ``path`` as a PNG if given, and opens a
    window if ``show``.  Returns ``{"index", "prediction", "label", "probs"}``
    with plain Python values (:func:`fastnn.test_prediction` prints them).
    """
    from .predict import predict_image

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
    kwargs = dict(probs=probs, class_names=net.class_names)
    if path is not None:
        plot_prediction(image, prediction, label, path, **kwargs)
    if show:
        show_prediction(image, prediction, label, **kwargs)
    return {"index": index, "prediction": prediction, "label": label, "probs": [float(p) for p in probs]}


def _draw_prediction(fig, image, pred_label, true_label, probs, class_names) -> None:
    pixels = prepare_image(image).reshape(SIDE, SIDE)
    if probs is None:
        ax_image = fig.subplots()
    else:
        ax_image, ax_probs = fig.subplots(1, 2, width_ratios=[1, 1.3])
        _draw_probs(ax_probs, probs, class_names)
    ax_image.imshow(pixels, cmap="gray", vmin=0, vmax=1)
    ax_image.set_axis_off()
    title = f"Predicted: {pred_label}"
    if true_label is not None:
        title += f"  True: {true_label}"
    wrong = true_label is not None and str(true_label) != str(pred_label)
    fig.suptitle(title, color="red" if wrong else "black")


def _draw_probs(ax, probs, class_names) -> None:
    probs = np.asarray(probs, dtype=float).ravel()
    names = _names(class_names, len(probs))
    bars = ax.bar(range(len(probs)), probs, color="0.7")
    bars[int(probs.argmax())].set_color("C0")
    ax.set_xticks(range(len(probs)), names)
    ax.set(ylim=(0, 1), ylabel="probability")


def plot_misclassified(X, y_true, y_pred, path, class_names=None, max_images: int = 25) -> Path:
    """Gallery of up to ``max_images`` misclassified images, captioned ``true→predicted``.

    ``X`` is ``(n, 784)`` or ``(n, 28, 28)``, raw or normalised.  Labels are
    shown through ``class_names`` when given (they are then class indices),
    else as they are.  With no mistakes the figure says so.
    """
    X = np.asarray(X)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if X.ndim < 1 or y_true.shape != (X.shape[0],) or y_pred.shape != (X.shape[0],):
        raise FastnnError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} must both have one "
            f"label per image ({X.shape[0] if X.ndim else 0} images)"
        )
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise FastnnError(f"max_images must be a positive integer, got {max_images!r}")
    wrong = np.flatnonzero(y_true != y_pred)
    if len(wrong) == 0:
        fig = Figure(figsize=(4, 2), dpi=DPI)
        fig.text(0.5, 0.5, "No misclassified images", ha="center", va="center", fontsize=12)
        return _save(fig, path)

    shown = wrong[:max_images]
    # Normalising only the shown rows avoids copying a whole data set to draw 25 images.
    images = prepare_images(X[shown]).reshape(-1, SIDE, SIDE)
    label = (lambda k: str(k)) if class_names is None else (lambda k: str(class_names[k]))
    cols = math.ceil(math.sqrt(len(shown)))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(max(4.0, 1.4 * cols), 1.6 * rows + 0.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, pixels, i in zip(axes.flat, images, shown):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{label(y_true[i])}→{label(y_pred[i])}", fontsize=9)
    fig.suptitle(f"Misclassified (true→predicted): showing {len(shown)} of {len(wrong)}")
    return _save(fig, path)


def plot_augmentation(originals, distorted, path, max_images: int = 12) -> Path:
    """Originals (top row of each pair) above their distorted versions: what the network was shown.

    ``originals`` and ``distorted`` are ``(n, 784)`` or ``(n, 28, 28)`` in [0, 1], row ``i`` of one
    the distortion of row ``i`` of the other (:func:`fastnn.augment.distort`).
    """
    originals, distorted = np.asarray(originals), np.asarray(distorted)
    if originals.shape != distorted.shape or originals.ndim < 2 or len(originals) == 0:
        raise FastnnError(
            f"originals {originals.shape} and distorted {distorted.shape} must be matching non-empty batches of images"
        )
    n = min(len(originals), max_images)
    fig = Figure(figsize=(1.1 * n + 0.6, 2.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for row, images, label in ((0, originals, "original"), (1, distorted, "distorted")):
        for k in range(n):
            ax = axes[row, k]
            ax.imshow(prepare_image(images[k]).reshape(SIDE, SIDE), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 0].set_ylabel(label)
    fig.suptitle("What training saw: originals and one epoch's distortions")
    return _save(fig, path)


def first_layer_images(weights, max_units: int = 64) -> tuple[np.ndarray, float]:
    """What :func:`plot_first_layer` draws: ``(images (n, 28, 28), limit)``.

    ``images[k]`` is unit ``k``'s incoming weights ``weights[:, k]`` laid out as
    the image they are multiplied with, for the first ``n = min(units,
    max_units)`` units; ``limit`` is the shared colour scale's half-width:
    half the largest weight magnitude among them, as scikit-learn's
    ``plot_mnist_filters`` example does, so that a few large weights do not
    wash out the rest (larger ones are drawn at full colour).
    """
    W = np.asarray(weights)
    if W.ndim != 2 or W.shape[0] != N_PIXELS or W.shape[1] == 0 or not np.issubdtype(W.dtype, np.floating):
        raise FastnnError(
            f"first-layer weights draw as {SIDE}x{SIDE} images: expected a float array "
            f"({N_PIXELS}, units), got {W.dtype} {W.shape}"
        )
    if isinstance(max_units, bool) or not isinstance(max_units, (int, np.integer)) or max_units < 1:
        raise FastnnError(f"max_units must be a positive integer, got {max_units!r}")
    shown = W[:, :max_units]
    if not np.isfinite(shown).all():
        raise FastnnError("the first layer's weights contain NaN or infinite values")
    images = np.ascontiguousarray(shown.T).reshape(-1, SIDE, SIDE)
    return images, 0.5 * float(np.abs(shown).max())


def plot_first_layer(weights, path, max_units: int = 64) -> Path:
    """What the first layer learned: each unit's weights drawn as a 28x28 image.

    ``weights`` is the first layer's ``(784, units)`` (``net.coefs[0]``).  Up to
    ``max_units`` units, in a square grid, on one symmetric grey scale shared by
    all (:func:`first_layer_images`): mid grey is 0, white pixels raise the
    unit's input, black ones lower it.
    """
    images, limit = first_layer_images(weights, max_units)
    n, units = len(images), np.asarray(weights).shape[1]
    limit = limit or 1.0  # all-zero weights: any scale draws them grey
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.0 * cols + 1.4, 1.0 * rows + 0.7), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image in zip(axes.flat, images):
        drawn = ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(drawn, ax=axes, shrink=0.8, extend="both", label="weight")
    shown = f"all {units} units" if n == units else f"the first {n} of {units} units"
    fig.suptitle(f"First layer: the weights of {shown}, as {SIDE}x{SIDE} images")
    return _save(fig, path)
