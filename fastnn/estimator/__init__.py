"""scikit-learn's multilayer perceptrons on fastnn's kernels: :class:`MLPClassifier`, :class:`MLPRegressor`.

The same parameters, defaults, errors, fitted attributes and behaviour as
``sklearn.neural_network``'s estimators -- code written for them runs with
only the import changed, and scikit-learn's own MLP tests run against these
(``tests/test_sklearn_mlp_suite.py``) -- with fastnn's options after
scikit-learn's, as extra keywords.  One module per job:

* :mod:`.params`: every parameter's default and rule;
* :mod:`.classifier`, :mod:`.regressor`: the public classes (targets, output
  heads, scores); :mod:`.base`: what they share (``fit``, prediction, pickling);
* :mod:`.stochastic`: ``sgd`` and ``adam``, epochs of fastnn's trainer under
  scikit-learn's stopping and learning-rate rules; :mod:`.lbfgs`: L-BFGS-B on
  the full-batch loss and gradient;
* :mod:`.state`: initial weights, the network behind ``coefs_``, the solver's state;
* :mod:`.auto`: the rule behind ``backend="auto"``; :mod:`.inputs`: sample
  weights and sparse ``X``; :mod:`._docs`: the docstrings' shared texts;
* :mod:`.onnx`: registration with skl2onnx's converters (needs skl2onnx).

Needs scikit-learn (``pip install fastnn[sklearn]``); ``import fastnn`` alone does not.
"""

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastnn's scikit-learn estimators need scikit-learn >= 1.6: pip install scikit-learn") from exc

from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
