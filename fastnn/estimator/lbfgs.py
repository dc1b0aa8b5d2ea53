"""``solver="lbfgs"``: SciPy's L-BFGS-B on the full-batch loss and gradient from fastnn's kernels.

The objective is scikit-learn's: the weighted mean loss of the output head
plus ``alpha ||W||^2 / (2 sum(w))`` (weights, not biases), and its gradient
is the backend's backward pass over all the rows (in chunks, so memory stays
bounded) plus ``alpha W / sum(w)``.  For squared error with several outputs
scikit-learn's *reported* loss averages over the outputs while its gradient
sums over them (as fastnn's head does); fastnn minimises the loss its
gradient belongs to -- the optimum scikit-learn's gradient drives to as well --
and reports ``loss_`` on scikit-learn's scale.

The variables are packed as scikit-learn packs them (every layer's weights,
then every layer's biases, raveled): L-BFGS-B is the same method in any order
of the variables, but not the same rounding, and in this order it takes
scikit-learn's steps.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ..backends import get_backend
from ..layers import Layout, Params

#: Rows per forward/backward call: bounds the activations' memory whatever the data's size.
CHUNK = 1 << 14


class FullBatch:
    """``theta -> (loss, gradient)`` of ``net`` on all of ``X`` against ``targets`` (see the module)."""

    def __init__(self, net, X, targets, alpha: float, backend: str):
        self.net, self.X, self.targets, self.alpha = net, X, targets, float(alpha)
        self.kernels = get_backend(backend)
        self.n = len(X)
        self.chunk = min(self.n, CHUNK)
        self.ws = self.kernels.make_workspace(net, self.chunk)
        self.weight_sum = float(targets.weights.sum(dtype=np.float64))
        self.grads = Params(Layout(net.layout.sizes, np.float64))
        self.blocks = list(net.params.coefs) + list(net.params.intercepts)
        self.grad_blocks = list(self.grads.coefs) + list(self.grads.intercepts)

    def pack(self) -> np.ndarray:
        """The network's parameters as one float64 vector, in scikit-learn's order."""
        return np.concatenate([b.ravel() for b in self.blocks]).astype(np.float64)

    def unpack(self, theta: np.ndarray) -> None:
        """Write ``theta`` (scikit-learn's order) into the network's parameters."""
        at = 0
        for b in self.blocks:
            b[...] = theta[at : at + b.size].reshape(b.shape)
            at += b.size

    def penalty(self) -> float:
        """The L2 term ``alpha ||W||^2 / (2 sum(w))`` at the network's current weights."""
        return 0.5 * self.alpha * self.net.params.squared_norm() / self.weight_sum

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        net, kernels, ws, G = self.net, self.kernels, self.ws, self.grads
        self.unpack(theta)
        G.flat[...] = 0.0
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see train_steps
            for lo in range(0, self.n, self.chunk):
                Xb = self.X[lo : lo + self.chunk]
                batch = self.targets.take(slice(lo, lo + self.chunk))
                m, batch_weight = len(Xb), float(batch.weights.sum(dtype=np.float64))
                if batch_weight == 0.0:
                    continue  # rows of weight 0 add nothing (and their mean is undefined)
                kernels.forward(net, Xb, ws)
                loss, _ = kernels.loss(net.head, ws.activations(m)[-1], batch, ws.deltas(m)[-1])
                kernels.backward(net, Xb, ws)
                # Each chunk's loss and gradient are means over its own weight: reweight to the whole's.
                share = batch_weight / self.weight_sum
                total += loss / m * share
                for g, chunk_grad in zip(self.grad_blocks, ws.grads.coefs + ws.grads.intercepts):
                    g += share * chunk_grad  # block by block: float32 and float64 buffers pad differently
            for g, W in zip(G.coefs, net.params.coefs):
                g += (self.alpha / self.weight_sum) * W
        return total + self.penalty(), np.concatenate([g.ravel() for g in self.grad_blocks])


def fit_lbfgs(est, net, X, targets, backend: str) -> None:
    """Minimise the objective from ``net``'s weights; sets ``n_iter_`` and ``loss_``, warns
    ``ConvergenceWarning`` when L-BFGS-B stopped for any reason but convergence."""
    objective = FullBatch(net, X, targets, est.alpha, backend)
    n_outputs = net.n_outputs

    def reported(value: float) -> float:
        """scikit-learn's ``loss_`` for the objective's ``value`` at the current weights."""
        if net.head != "identity" or n_outputs == 1:
            return float(value)
        penalty = objective.penalty()
        return (value - penalty) / n_outputs + penalty

    iteration = [0]

    def progress(intermediate_result):
        iteration[0] += 1
        print(f"Iteration {iteration[0]}, loss = {reported(intermediate_result.fun):.8f}")

    result = scipy.optimize.minimize(
        objective,
        objective.pack(),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
        callback=progress if est.verbose else None,
    )
    objective.unpack(result.x)
    est.n_iter_ = min(int(result.nit), est.max_iter)
    est.loss_ = reported(result.fun)
    if result.status != 0:
        message = (
            f"lbfgs failed to converge after {est.n_iter_} iteration(s) (status={result.status}):\n{result.message}\n"
        )
        if est.n_iter_ == est.max_iter:
            message += f"\nIncrease the number of iterations to improve the convergence (max_iter={est.max_iter})."
        message += "\nYou might also want to scale the data (e.g. with a StandardScaler)."
        warnings.warn(message, ConvergenceWarning, stacklevel=4)  # fit_lbfgs <- _fit <- fit <- the caller
