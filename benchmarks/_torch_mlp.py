"""fastnn's network and optimizer as idiomatic PyTorch, for the comparisons (``compare.py``,
``augment_torch_compare.py``).  Imports torch: load it only where PyTorch runs.

:func:`sequential` is the ``nn.Sequential`` of ``nn.Linear`` layers with the
network's hidden activation between them (none after the last: the loss,
``F.cross_entropy``, applies the softmax), starting from the network's own
weights, so both sides train from the same initial point.
:func:`optimizer` is the ``torch.optim`` rule fastnn's optimizer names, with
weight decay on the weights only, as fastnn's.
"""

from __future__ import annotations

import torch
from torch import nn

#: fastnn's hidden activations (fastnn.activations.ACTIVATIONS) as torch modules.
ACTIVATIONS = {"identity": nn.Identity, "logistic": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def sequential(net) -> nn.Sequential:
    """``Linear, f, Linear, f, ..., Linear`` with ``net``'s layer sizes, activation ``f`` and weights."""
    layers = []
    for i, (W, b) in enumerate(net.params.blocks()):
        if i:
            layers.append(ACTIVATIONS[net.activation]())
        linear = nn.Linear(*W.shape, dtype=torch.from_numpy(W).dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))  # nn.Linear keeps (fan_out, fan_in)
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
    return nn.Sequential(*layers)


def describe(model: nn.Sequential) -> str:
    """``Linear(784, 100)-ReLU-Linear(100, 10)``: the model at a glance, for the notes."""
    return "-".join(
        f"Linear({m.in_features}, {m.out_features})" if isinstance(m, nn.Linear) else type(m).__name__ for m in model
    )


def optimizer(
    model: nn.Sequential, name: str, lr: float, momentum: float = 0.9, beta2: float = 0.999, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """``torch.optim`` for fastnn's optimizer ``name`` (sgd, momentum, nesterov, adam); ``momentum``
    is Adam's beta1, as in fastnn; weight decay on the weights, not the biases."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    groups = [
        {"params": [m.weight for m in linears], "weight_decay": weight_decay},
        {"params": [m.bias for m in linears], "weight_decay": 0.0},
    ]
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, beta2), eps=1e-8)
    if name not in ("sgd", "momentum", "nesterov"):
        raise ValueError(f"no PyTorch counterpart for the optimizer {name!r}")
    return torch.optim.SGD(groups, lr=lr, momentum=0.0 if name == "sgd" else momentum, nesterov=name == "nesterov")
