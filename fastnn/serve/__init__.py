"""``fastnn serve``: a local web page to draw a digit and see the network's prediction live.

:func:`create_app` builds the application (Starlette, run by uvicorn) for a
loaded network; :func:`load_model` loads a model file and refuses one the
page cannot feed.  The request rules (size limit, formats, pixel values) are
in :mod:`fastnn.serve.requests`.  Needs the ``serve`` extra:
``pip install -e ".[serve]"``.
"""

from __future__ import annotations

from ..errors import FastnnError
from ..pixels import N_PIXELS

__all__ = ["create_app", "load_model"]


def load_model(path):
    """``(net, metadata)`` from a model file, or a :class:`FastnnError` saying why it cannot be served."""
    from ..modelfile import load_network

    net, meta = load_network(path)
    if net.n_features != N_PIXELS:
        raise FastnnError(
            f"{path}: the model takes {net.n_features} features, but fastnn serve feeds it "
            f"28x28 images ({N_PIXELS} pixels); serve a model trained on MNIST-like images"
        )
    return net, meta


def create_app(net, metadata=None, **kwargs):
    """See :func:`fastnn.serve.app.create_app`."""
    from .app import create_app as _create

    return _create(net, metadata, **kwargs)
