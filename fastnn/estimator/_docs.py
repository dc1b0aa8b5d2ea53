"""The estimators' docstrings, assembled from one text per parameter and attribute.

Both estimators share most of their parameters; each is described once here.
"""

from __future__ import annotations

PARAMETERS = {
    "loss": """\
loss : {"squared_error", "poisson"}, default="squared_error"
    The loss minimised: half the squared error (identity output), or half the
    Poisson deviance (exponential output; needs ``y >= 0``).""",
    "hidden_layer_sizes": """\
hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
    Units of each hidden layer, any number of them.""",
    "activation": """\
activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
    The hidden layers' activation.""",
    "solver": """\
solver : {"lbfgs", "sgd", "adam"}, default="adam"
    ``lbfgs``: SciPy's L-BFGS-B on the full-batch loss and gradient (often
    best for small data); ``sgd``: mini-batch SGD with (Nesterov) momentum;
    ``adam``: Adam.""",
    "alpha": """\
alpha : float, default=0.0001
    Strength of the L2 penalty ``alpha ||W||^2 / (2 n)`` on the weights (not
    the biases), ``n`` being a batch's total sample weight.""",
    "batch_size": """\
batch_size : int or "auto", default="auto"
    Rows per mini-batch of the stochastic solvers; ``"auto"`` is
    ``min(200, n_samples)``.  Ignored by ``lbfgs``.""",
    "learning_rate": """\
learning_rate : {"constant", "invscaling", "adaptive", "cosine", "onecycle"}, default="constant"
    scikit-learn's schedules, for ``sgd`` only: ``constant``;
    ``invscaling``, ``learning_rate_init / (t_ + 1) ** power_t`` after every
    epoch; ``adaptive``, the rate divided by 5 whenever ``n_iter_no_change``
    epochs fail to improve by ``tol``.  fastnn's, for ``sgd`` and ``adam``,
    every step's rate over ``max_iter`` epochs: ``cosine`` (down to 0) and
    ``onecycle`` (a warm-up to ``learning_rate_init`` over 30% of the steps,
    then down).""",
    "learning_rate_init": """\
learning_rate_init : float, default=0.001
    The (initial, or peak) learning rate of ``sgd`` and ``adam``.""",
    "power_t": """\
power_t : float, default=0.5
    The exponent of ``invscaling``.""",
    "max_iter": """\
max_iter : int, default=200
    Epochs at most (stochastic solvers), or L-BFGS iterations at most.""",
    "shuffle": """\
shuffle : bool, default=True
    Visit the rows in a fresh order each epoch (stochastic solvers).""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Draws the initial weights (scikit-learn's draws: the same weights as
    scikit-learn for the same ``random_state``), the validation split and the
    seed of the epochs' shuffles.""",
    "tol": """\
tol : float, default=0.0001
    The improvement that counts: training stops once the training loss (or
    the validation score, with ``early_stopping``) has not improved by
    ``tol`` for ``n_iter_no_change`` epochs.  L-BFGS's gradient tolerance.""",
    "verbose": """\
verbose : bool or int, default=False
    Print ``Iteration k, loss = ...`` after every epoch (or L-BFGS iteration).""",
    "warm_start": """\
warm_start : bool, default=False
    ``fit`` continues from the current weights instead of new ones.""",
    "momentum": """\
momentum : float, default=0.9
    Momentum of ``sgd``, in [0, 1].""",
    "nesterovs_momentum": """\
nesterovs_momentum : bool, default=True
    Nesterov's momentum (``sgd`` with ``momentum > 0``).""",
    "early_stopping": """\
early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the training data, stop when its score
    has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the
    weights of the best epoch.  The split is stratified for single-label
    classification.""",
    "validation_fraction": """\
validation_fraction : float, default=0.1
    The fraction held out with ``early_stopping``.""",
    "beta_1": """\
beta_1 : float, default=0.9
    Adam's first-moment decay, in [0, 1).""",
    "beta_2": """\
beta_2 : float, default=0.999
    Adam's second-moment decay, in [0, 1).""",
    "epsilon": """\
epsilon : float, default=1e-08
    Adam's epsilon.""",
    "n_iter_no_change": """\
n_iter_no_change : int or np.inf, default=10
    Epochs without an improvement of ``tol`` before stopping (or, with
    ``adaptive``, slowing down).""",
    "max_fun": """\
max_fun : int, default=15000
    L-BFGS's limit on loss evaluations.""",
    "class_weight": """\
class_weight : dict, "balanced" or None, default=None
    fastnn's: weight each class's rows by ``class_weight[label]``
    (``"balanced"``: ``n / (n_classes * count)``), multiplying any
    ``sample_weight``.  Single-label targets; ``fit`` only for ``"balanced"``.""",
    "backend": """\
backend : {"auto", "numba", "numpy"}, default="auto"
    fastnn's: which kernels train. ``"auto"`` picks numba when the fit's work
    repays its start-up, NumPy for small fits, by a fixed rule on the data's
    shape and the parameters (:mod:`fastnn.estimator.auto`).""",
    "dtype": """\
dtype : {"float32", "float64"} or None, default=None
    fastnn's: the dtype the network computes in. None follows ``X``, as
    scikit-learn does (float32 stays float32, the fast path; anything else is
    float64); ``"float32"`` trains float32 on float64 data.""",
    "augment": """\
augment : {"none", "affine", "elastic"}, default="none"
    fastnn's: distort every training image afresh each epoch (28x28 images,
    784 features; stochastic solvers). See :mod:`fastnn.augment`.""",
    "augment_rotation": """\
augment_rotation, augment_scale, augment_shear, augment_shift : float, default=10.0, 0.1, 0.2, 1.5
    fastnn's: the affine ranges (degrees, zoom ``1 +- scale``, shear, pixels).""",
    "augment_alpha": """\
augment_alpha, augment_sigma : float, default=34.0, 4.0
    fastnn's: the elastic distortion's strength and smoothness (pixels).""",
    "augment_flip": """\
augment_flip, augment_erase, augment_erase_area : float, default=0.0, 0.0, 0.25
    fastnn's, with ``augment`` ``"affine"`` or ``"elastic"``: the probability of
    mirroring an image left-right, that of random erasing (a random rectangle
    set to 0), and the erased rectangle's largest area, a fraction of the image
    (for clothing rather than digits).""",
    "dropout": """\
dropout : float, default=0.0
    fastnn's: the probability, in [0, 1), of dropping each hidden unit's output
    for a training row in an epoch (inverted dropout: kept outputs are scaled by
    ``1 / (1 - dropout)``; stochastic solvers). Off in ``predict``, ``score``
    and exported models. See :mod:`fastnn.dropout`.""",
}

ATTRIBUTES = {
    "classes_": """\
classes_ : ndarray of shape (n_classes,)
    The class labels (for multilabel targets, one per output).""",
    "loss_": """\
loss_ : float
    The loss at the end of the last epoch (or of L-BFGS), L2 term included, on
    scikit-learn's scale.""",
    "best_loss_": """\
best_loss_ : float or None
    The lowest ``loss_`` so far (None with ``early_stopping``).""",
    "loss_curve_": """\
loss_curve_ : list of float
    ``loss_`` after every epoch (stochastic solvers).""",
    "validation_scores_": """\
validation_scores_ : list of float or None
    The held-out score after every epoch, with ``early_stopping`` (accuracy
    for the classifier, R^2 for the regressor); else None.""",
    "best_validation_score_": """\
best_validation_score_ : float or None
    The best of ``validation_scores_``, whose weights were kept.""",
    "validation_loss_curve_": """\
validation_loss_curve_ : list of float or None
    fastnn's: the held-out mean loss (without the L2 term) after every epoch,
    with ``early_stopping``; else None.""",
    "t_": """\
t_ : int
    Training rows seen by the stochastic solvers.""",
    "coefs_": """\
coefs_ : list of ndarray
    Each layer's weights, ``(fan_in, fan_out)``, in the dtype the model computes in.""",
    "intercepts_": """\
intercepts_ : list of ndarray
    Each layer's biases, ``(fan_out,)``.""",
    "n_features_in_": """\
n_features_in_ : int
    Features seen in ``fit``.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Their names, when ``X`` had string column names.""",
    "n_iter_": """\
n_iter_ : int
    Epochs (or L-BFGS iterations) of the last ``fit``; 1 after ``partial_fit``.""",
    "n_layers_": """\
n_layers_ : int
    Layers, input and output included.""",
    "n_outputs_": """\
n_outputs_ : int
    Output units.""",
    "out_activation_": """\
out_activation_ : str
    The output head: ``softmax``, ``logistic``, ``identity`` or ``exp``.""",
    "network_": """\
network_ : fastnn.Network
    The model as a fastnn network, for ``fastnn.save_network`` (the safe
    model file) and ``fastnn.export_onnx``: it shares ``coefs_``' memory,
    except that a binary classifier's is its two-output softmax equivalent
    (``softmax([0, z])`` is the logistic output), a copy.""",
}


def docstring(summary: str, parameters, attributes, tail: str) -> str:
    """A numpydoc docstring: ``summary``, the named parameters and attributes, then ``tail``."""

    def indent(text):
        return "\n".join("    " + line if line else line for line in text.splitlines())

    params = "\n\n".join(indent(PARAMETERS[name]) for name in parameters)
    attrs = "\n\n".join(indent(ATTRIBUTES[name]) for name in attributes)
    return f"{summary}\n\n    Parameters\n    ----------\n{params}\n\n    Attributes\n    ----------\n{attrs}\n\n{tail}"
