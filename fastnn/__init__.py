"""fastnn: train multilayer perceptrons of any depth, fast, on a CPU.

Every hot step exists twice: a readable NumPy reference backend and a parallel
Numba backend that agrees with it (``fastnn.backends``).  The public API:

* data: :func:`load_dataset`, :func:`read_kaggle_csv`, :func:`read_idx`;
* networks and training: :class:`Network` (any depth: :mod:`fastnn.network`; activations and
  output heads: :mod:`fastnn.activations`), :func:`init_network`, :class:`TrainConfig` (every
  option's default and rule: :mod:`fastnn.config`), :func:`train` and :func:`resume` (a run
  continued from its checkpoint: :mod:`fastnn.checkpoint`); the loop itself and its parts:
  :mod:`fastnn.training`, :mod:`fastnn.optimizers`; augmentation: :mod:`fastnn.augment`;
* evaluation: :func:`classification_report`, :func:`confusion_matrix`; a run's report
  folder: :mod:`fastnn.report`;
* prediction: :func:`predict_image`, :func:`predict_batch`; figures: :mod:`fastnn.plots`
  (``show_sample`` draws one prediction);
* model files: :func:`save_network`, :func:`load_network`; ONNX: :func:`export_onnx` (needs onnx);
* scikit-learn's estimators, trained by fastnn: :class:`MLPClassifier`, :class:`MLPRegressor`
  (need scikit-learn; imported on first use);
* sweeps on a Dask cluster: :func:`sweep` (needs dask[distributed]; imported on first use);
* the notebook's helpers: :mod:`fastnn.compat` (``mini_batch_gradient_descent``, and
  :func:`test_prediction`, also here);
* the command line: :mod:`fastnn.cli` (``fastnn train``, ``predict``, ``export``, ``serve``, ``sweep``).

Problems the caller can fix raise :class:`FastnnError` (a ``ValueError``).
"""

from .compat import test_prediction
from .config import TrainConfig
from .data import Dataset, load_dataset, read_idx, read_kaggle_csv
from .errors import FastnnError
from .export import export_onnx
from .metrics import classification_report, confusion_matrix
from .modelfile import load_network, save_network
from .network import Network, init_network
from .predict import predict_batch, predict_image
from .training import History, resume, train

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)


def __getattr__(name):
    # Lazy, so that `import fastnn` works without scikit-learn installed.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimator

        return getattr(estimator, name)
    if name == "sweep":  # needs dask[distributed] and pandas, imported when a sweep runs
        from .sweeps import sweep

        return sweep
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


__all__ = [
    "Dataset",
    "FastnnError",
    "History",
    "MLPClassifier",
    "MLPRegressor",
    "Network",
    "TrainConfig",
    "classification_report",
    "confusion_matrix",
    "export_onnx",
    "init_network",
    "load_dataset",
    "load_network",
    "predict_batch",
    "predict_image",
    "read_idx",
    "read_kaggle_csv",
    "resume",
    "save_network",
    "sweep",
    "test_prediction",
    "train",
]
