"""Training: epochs of mini-batch gradient descent, and the run a :class:`TrainConfig` describes.

Two layers, each a short loop:

* :class:`Trainer` runs epochs of one network on one training set: the
  epoch's shuffle, its augmentation, then the backend's ``train_steps`` over
  the epoch in chunks, with the learning rates the caller gives.  It knows
  nothing of schedules or stopping: scikit-learn's estimators drive it with
  their own rules (:mod:`fastnn.estimator`).
* :class:`Run` is one run of a :class:`~fastnn.config.TrainConfig` (what
  ``fastnn train`` does): a schedule over all its steps, the dev accuracy after
  every epoch, early stopping, and the :class:`History`; :func:`train` is a
  whole run.

Both are backend-agnostic: they ask :func:`fastnn.backends.get_backend` for a
module once and call only its kernels, so the NumPy reference and the numba
backend run exactly the same loop.  Every random choice is keyed on
``(seed, epoch)`` (:mod:`fastnn._keys`), so a run is a pure function of its
config and data, whatever the backend's thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from . import _aligned, checkpoint
from . import dropout as _dropout
from .activations import Targets, make_targets
from .augment import AugmentSpec, check_images, spec_from_config
from .backends import get_backend
from .checkpoint import data_fingerprint
from .config import TrainConfig
from .errors import FastnnError, Interrupted
from .layers import Layout, Params
from .network import Network, init_network
from .optimizers import Optimizer, make_optimizer
from .schedules import learning_rates


@dataclass
class History:
    """What happened during training: one row per epoch, optionally per N steps."""

    epochs: list = field(default_factory=list)  # dicts: epoch, train_loss, train_accuracy, dev_accuracy, seconds
    steps: list = field(default_factory=list)  # dicts: step, epoch, train_loss
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept
    stopped_early: bool = False

    def to_dict(self) -> dict:
        """Plain JSON-serialisable form (as written to ``metrics.json``)."""
        return asdict(self)


def check_training_data(X, y, n_classes: int | None = None, dtype=np.float32) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate and convert training arrays: C-contiguous ``dtype`` X, int64 labels in [0, c)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise FastnnError(f"training inputs must be a 2-D array (n, features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise FastnnError("training data is empty")
    if X.shape[1] == 0:
        raise FastnnError("training inputs have no features (shape (n, 0))")
    if y.shape != (X.shape[0],):
        raise FastnnError(f"labels must have shape ({X.shape[0]},) to match the inputs, got {y.shape}")
    if not np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_:
        raise FastnnError(f"training inputs must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=dtype)
    check_finite(X, "training inputs")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)
        else:
            raise FastnnError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.int64)
    c = int(y.max()) + 1 if n_classes is None else n_classes
    if y.min() < 0 or y.max() >= c:
        raise FastnnError(f"labels must lie in 0..{c - 1}, found {int(y.min())}..{int(y.max())}")
    return X, y, c


def check_finite(X: np.ndarray, what: str) -> None:
    """Refuse NaN or infinite values, in chunks of rows (a whole-array mask would be n x d)."""
    for lo in range(0, X.shape[0], 4096):
        if not np.isfinite(X[lo : lo + 4096]).all():
            raise FastnnError(f"{what} contain NaN or infinite values")


#: Steps between checks of a ``stop`` request when no log chunk is asked for (~0.1-1 s of work).
STOP_CHECK_STEPS = 32


class Diverged(FastnnError):
    """The loss stopped being finite: the learning rate is too large for these data."""


class Trainer:
    """Epochs of mini-batch training of ``net`` on ``X`` against ``targets``, in place.

    Epoch ``e`` visits the rows in the order :func:`permutation` ``(n, seed, e)``
    gives (in order when ``shuffle`` is False), in batches of ``batch_size``
    (the last may be short), applying ``optimizer`` after each.  With
    ``augment`` (an :class:`~fastnn.augment.AugmentSpec`) each epoch trains on a
    fresh distortion of every image, keyed on ``(seed, e, row)``; ``X`` itself
    is never changed.  With ``dropout`` > 0 each hidden unit's output is dropped
    with that probability per training row and epoch, keyed on ``(seed, e, row)``
    (:mod:`fastnn.dropout`).  ``epoch`` counts the epochs done; setting it moves the
    run to another epoch (the shuffle, distortions and dropout masks are that epoch's).
    """

    def __init__(
        self,
        net: Network,
        X: np.ndarray,
        targets: Targets,
        *,
        batch_size: int,
        optimizer: Optimizer,
        backend: str,
        seed: int = 0,
        shuffle: bool = True,
        augment: AugmentSpec | None = None,
        dropout: float = 0.0,
    ):
        _dropout.for_epoch(dropout, seed, 0)  # refuses a rate outside [0, 1)
        self.dropout = float(dropout)
        self.net, self.targets, self.optimizer = net, targets, optimizer
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), shuffle
        self.kernels = get_backend(backend)
        self.n = len(X)
        self.ws = self.kernels.make_workspace(net, min(self.batch_size, self.n))
        self.perm = np.arange(self.n, dtype=np.int64)
        self.source = X
        self.augment = augment if augment is not None and augment.kind != "none" else None
        if self.augment is not None:
            check_images(X.shape[1])
            self.X = _aligned.empty(X.shape, X.dtype)  # each epoch's distorted copy of the training set
        else:
            self.X = X
        self.epoch = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def run_epoch(
        self, lrs, chunk: int | None = None, on_chunk: Callable | None = None, stop: Callable | None = None
    ) -> tuple[float, int]:
        """One epoch with ``lrs`` (one rate per step); returns (loss sum, rows right).

        With ``chunk`` (samples), ``on_chunk(steps_done, chunk_loss_mean)`` is called after
        every ``chunk`` samples.  ``stop()``, if given, is asked after every chunk (every
        :data:`STOP_CHECK_STEPS` steps without ``chunk``); when it says so the epoch is
        abandoned with :class:`Interrupted` (the network is then part-way through it).  A
        loss that is no longer finite raises :class:`FastnnError`.
        """
        if chunk is None and stop is not None:
            chunk = STOP_CHECK_STEPS * self.batch_size
        lrs = np.broadcast_to(np.asarray(lrs, np.float64), (self.steps_per_epoch,))
        if self.shuffle:
            self.kernels.permutation(self.n, self.seed, self.epoch, self.perm)
        if self.augment is not None:
            self.kernels.augment(self.source, self.seed, self.epoch, self.augment, self.X, self.ws)
        drop = _dropout.for_epoch(self.dropout, self.seed, self.epoch)  # None without dropout
        chunk = chunk or self.n
        loss_sum, correct, step = 0.0, 0, 0
        for start in range(0, self.n, chunk):
            stop_row = min(start + chunk, self.n)
            n_steps = math.ceil((stop_row - start) / self.batch_size)
            chunk_loss, chunk_correct = self.kernels.train_steps(
                self.net,
                self.X,
                self.targets,
                self.perm,
                start,
                stop_row,
                self.batch_size,
                lrs[step : step + n_steps],
                self.optimizer,
                self.ws,
                drop,
            )
            if not math.isfinite(chunk_loss):
                raise Diverged(
                    f"training diverged: the loss became {chunk_loss} in epoch {self.epoch + 1}; "
                    f"try a smaller learning rate than {float(lrs.max()):g}"
                )
            loss_sum += chunk_loss
            correct += chunk_correct
            step += n_steps
            if on_chunk is not None:
                on_chunk(step, chunk_loss / (stop_row - start))
            if stop is not None and stop_row < self.n and stop():
                raise Interrupted(f"stopped in epoch {self.epoch + 1}")
        self.epoch += 1
        return loss_sum, correct


class Run:
    """One training run as a :class:`TrainConfig` describes it (see :func:`train`)."""

    def __init__(
        self,
        X,
        y,
        config: TrainConfig,
        *,
        X_dev=None,
        y_dev=None,
        n_classes: int | None = None,
        network: Network | None = None,
        class_names=None,
    ):
        config.validate()
        if n_classes is None and network is not None:
            n_classes = network.n_outputs  # fine-tuning: labels index the network's outputs
        X, y, c = check_training_data(X, y, n_classes)
        n, d = X.shape
        if network is None:
            network = init_network(d, config.hidden, c, config.seed, activation=config.activation)
        elif (network.n_features, network.n_outputs) != (d, c) or network.head != "softmax":
            raise FastnnError(
                f"the network expects {network.n_features} features and {network.n_outputs} "
                f"classes, but the data has {d} features and {c} classes"
            )
        network = network if network.dtype == np.float32 else network.astype(np.float32)
        if class_names is not None:
            if len(class_names) != c:
                raise FastnnError(f"class_names has {len(class_names)} names for {c} classes")
            network.class_names = tuple(str(name) for name in class_names)
        if X_dev is not None and len(X_dev):
            X_dev, y_dev, _ = check_training_data(X_dev, y_dev, c)
        else:
            X_dev = None
        if config.patience > 0 and X_dev is None:
            raise FastnnError("early stopping (patience > 0) needs a dev split to watch; give a dev set")
        self.config, self.net = config, network
        self.X_dev, self.y_dev = X_dev, y_dev
        optimizer = make_optimizer(
            config.optimizer,
            network.layout,
            momentum=config.momentum,
            beta2=config.beta2,
            weight_decay=config.weight_decay,
        )
        self.trainer = Trainer(
            network,
            X,
            make_targets("softmax", y, c),
            batch_size=config.batch_size,
            optimizer=optimizer,
            backend=config.backend,
            seed=config.seed,
            augment=spec_from_config(config),
            dropout=config.dropout,
        )
        self.lrs = learning_rates(config.schedule, config.lr, self.trainer.steps_per_epoch * config.epochs)
        self.history = History()
        self.best: Params | None = None  # with early stopping: a copy of the best epoch's parameters
        self.fingerprint = data_fingerprint(X, y)
        self.threads = self.trainer.kernels.thread_info()["threads"]

    @classmethod
    def resume(cls, path, X, y, *, X_dev=None, y_dev=None) -> Run:
        """The run saved in the checkpoint ``path`` (a file or the folder holding one),
        continued on the same data: its next epoch is the one the saved run would have trained."""
        meta, arrays = checkpoint.load(path)
        try:
            config = checkpoint.config_of(meta)
            spec = meta["network"]
            layout = Layout(spec["sizes"], spec["dtype"])
            params = Params(layout, arrays["params"])
            net = Network.from_params(params, spec["activation"], spec["head"], class_names=spec["class_names"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FastnnError(f"{path}: malformed checkpoint ({type(exc).__name__}: {exc})") from None
        run = cls(X, y, config, X_dev=X_dev, y_dev=y_dev, network=net)
        if run.fingerprint != meta.get("data"):
            raise FastnnError(
                f"{path} was saved by a run on other training data; resume it with the "
                "data, dev split and seed it started with"
            )
        try:
            run.trainer.optimizer.load_state(
                {name[len("optimizer_") :]: a for name, a in arrays.items() if name.startswith("optimizer_")}
            )
            run.trainer.epoch = int(meta["epochs_done"])
            run.history = History(**meta["history"])
            if "best" in arrays:
                run.best = Params(layout, arrays["best"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FastnnError(f"{path}: malformed checkpoint ({type(exc).__name__}: {exc})") from None
        return run

    def save(self, path, metadata: dict | None = None):
        """Write this run's state after its last epoch to ``path`` (see :mod:`fastnn.checkpoint`)."""
        return checkpoint.save(path, self, metadata)

    @property
    def epochs_done(self) -> int:
        return self.trainer.epoch

    @property
    def done(self) -> bool:
        return self.history.stopped_early or self.epochs_done >= self.config.epochs

    def next_epoch(self, stop: Callable | None = None) -> dict:
        """Train one epoch; returns its history row (train loss and accuracy, dev accuracy, seconds).

        ``stop`` as :meth:`Trainer.run_epoch`'s: an abandoned epoch raises :class:`Interrupted`.
        """
        config, trainer, history = self.config, self.trainer, self.history
        epoch, spe, n = trainer.epoch, trainer.steps_per_epoch, trainer.n

        def log(step, mean_loss):
            history.steps.append({"step": epoch * spe + step, "epoch": epoch + 1, "train_loss": mean_loss})

        t0 = time.perf_counter()
        loss_sum, correct = trainer.run_epoch(
            self.lrs[epoch * spe : (epoch + 1) * spe],
            chunk=min(n, config.log_every * config.batch_size) if config.log_every else None,
            on_chunk=log if config.log_every else None,
            stop=stop,
        )
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n,
            "train_accuracy": correct / n,
            "seconds": time.perf_counter() - t0,
        }
        if config.schedule != "constant":
            row["lr"] = float(self.lrs[(epoch + 1) * spe - 1])
        if self.X_dev is not None:
            row["dev_accuracy"] = float(np.mean(self.net.predict(self.X_dev, config.backend) == self.y_dev))
        history.epochs.append(row)
        if config.patience > 0:
            best_epoch = history.best_epoch  # set with self.best
            if (
                self.best is None
                or best_epoch is None
                or row["dev_accuracy"] > history.epochs[best_epoch - 1]["dev_accuracy"]
            ):
                self.best = self.net.params.copy()
                history.best_epoch = epoch + 1
            elif epoch + 1 - best_epoch >= config.patience:
                history.stopped_early = True
        return row

    def finish(self) -> tuple[Network, History]:
        """The trained network (the best epoch's weights with early stopping) and the history."""
        if self.best is not None:
            self.net.params.flat[...] = self.best.flat
        return self.net, self.history


def train(
    X,
    y,
    config: TrainConfig,
    *,
    X_dev=None,
    y_dev=None,
    n_classes: int | None = None,
    network: Network | None = None,
    progress: Callable | None = None,
    class_names=None,
    checkpoint_path=None,
    checkpoint_metadata: dict | None = None,
    stop: Callable | None = None,
) -> tuple[Network, History]:
    """Train a network with mini-batch gradient descent; returns it and its :class:`History`.

    ``X (n, d)`` float (normalised to [0, 1] for images) and ``y (n,)`` integer
    labels in ``[0, c)``, with ``c = n_classes``, else the given ``network``'s
    outputs, else ``max(y) + 1``.  A new network has ``config.hidden`` layers
    and ``config.activation`` and a softmax head; ``network`` instead continues
    training an existing (softmax) network in place: its own layers decide the
    shape.  Each epoch visits every sample once in a fresh order drawn from
    ``(seed, epoch)``; the last batch of an epoch may be short.  The optimizer,
    schedule and early stopping come from ``config``.  ``X_dev, y_dev``
    (optional) give the dev accuracy recorded after every epoch, which early
    stopping watches (and restores the best epoch's weights).  Same seed and
    backend give identical results run to run.  With ``config.augment`` other
    than ``"none"`` each epoch trains on a fresh distortion of every training
    image (see :mod:`fastnn.augment`; ``X`` itself is not changed, and ``X_dev``
    never distorted); ``X`` must then hold 28x28 images (784 features).
    ``progress``, if given, is called as ``progress(epoch_row)`` after every
    epoch.  ``class_names`` (one per class) name the network's outputs for
    display (default ``"0"``, ``"1"``, ...).  With ``checkpoint_path`` the run's
    state is saved there after every epoch (with ``checkpoint_metadata``), and
    :func:`resume` finishes an interrupted run from it.  ``stop()``, if given, is
    asked between chunks of every epoch: when it says so, training ends with
    :class:`Interrupted` (every finished epoch is in the checkpoint).  Raises
    :class:`FastnnError` on invalid options or data, or if the loss becomes NaN
    or infinite.
    """
    run = Run(X, y, config, X_dev=X_dev, y_dev=y_dev, n_classes=n_classes, network=network, class_names=class_names)
    return _finish(run, progress, checkpoint_path, checkpoint_metadata, stop)


def resume(
    path,
    X,
    y,
    *,
    X_dev=None,
    y_dev=None,
    progress: Callable | None = None,
    checkpoint_metadata: dict | None = None,
    stop: Callable | None = None,
) -> tuple[Network, History]:
    """Finish the run saved in the checkpoint ``path`` on the same data it started on.

    The result is bit for bit the uninterrupted run's (same backend and thread
    count).  The checkpoint keeps being updated after every epoch, so an
    interrupted resume can be resumed again.
    """
    run = Run.resume(path, X, y, X_dev=X_dev, y_dev=y_dev)
    return _finish(run, progress, path, checkpoint_metadata, stop)


def _finish(run: Run, progress, checkpoint_path, checkpoint_metadata, stop=None) -> tuple[Network, History]:
    while not run.done:
        row = run.next_epoch(stop)
        if checkpoint_path is not None:
            run.save(checkpoint_path, checkpoint_metadata)
        if progress is not None:
            progress(row)
        if stop is not None and not run.done and stop():
            raise Interrupted(f"stopped after epoch {run.epochs_done}")
    return run.finish()
