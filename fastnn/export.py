"""Export a network to ONNX, so it runs wherever models run (onnxruntime, C++, browsers).

The graph is the network itself, for any depth, activation and head, with
nothing fastnn-specific left to do:

* input ``pixels``: ``[N, d]`` with a dynamic batch dimension ``N``; by default
  *normalised* inputs, exactly what fastnn's own ``predict`` takes (MNIST pixels
  divided by 255); with ``raw_pixels=True``, raw 0-255 values, the division
  folded into the first layer's weights (``coefs[0] / 255``), so the graph has
  no extra operator;
* one ``Gemm`` per layer, each hidden one followed by the activation's operator
  (:data:`ACTIVATION_OPS`: ``Relu``, ``Tanh``, ``Sigmoid`` or ``Identity``);
* then the head (:data:`HEAD_OPS`) on the last layer's raw outputs ``z``:

  ========  =======================================  =================================================
  head      outputs                                  ``label``
  ========  =======================================  =================================================
  softmax   ``label [N]``, ``probabilities [N, C]``  the class of ``ArgMax(z)``
  logistic  ``label``, ``probabilities`` (Sigmoid)   one output: the class of ``z > 0`` (``[N]``);
                                                     several: ``z > 0`` as int64 0/1 ``[N, C]``
  identity  ``predictions [N, C]`` (``z``)           none (regression)
  exp       ``predictions [N, C]`` (``Exp(z)``)      none (regression)
  ========  =======================================  =================================================

  the same rules as :meth:`Network.predict`, on the same ``z``.  Class labels
  are int64 for integer labels (MNIST's digits), double for float labels, and
  the text of any other labels (strings, booleans), the rule model files use.

The graph computes in the network's dtype: a float32 network gives a float
graph (input, weights and outputs), a float64 one a double graph (onnxruntime
runs both; ``net.astype(np.float32)`` first for a float graph from a float64
network).  The model's metadata (``metadata_props``) holds fastnn's version,
the input convention, the layer ``sizes``, ``activation``, ``head``, ``dtype``
and the class labels and names.  Opset 17 and IR version 8: what current
onnxruntime releases run; :func:`to_onnx` checks the graph with
``onnx.checker``.  Needs the ``onnx`` package (``pip install -e ".[onnx]"``,
which also brings onnxruntime to run the file).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from .errors import FastnnError
from .network import Network

OPSET = 17
IR_VERSION = 8
INPUT = "pixels"
#: Hidden activation -> the ONNX operator computing it.
ACTIVATION_OPS = {"identity": "Identity", "logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
#: Output head -> (the ONNX operator of its output, the output's name).
HEAD_OPS = {
    "softmax": ("Softmax", "probabilities"),
    "logistic": ("Sigmoid", "probabilities"),
    "identity": ("Identity", "predictions"),
    "exp": ("Exp", "predictions"),
}
#: A protobuf message, so an ONNX file with its weights inside, is at most 2 GB (a little left for the graph).
_MAX_PROTO_BYTES = (1 << 31) - (1 << 20)


def outputs(head: str) -> tuple:
    """The graph's output names for ``head``: ``("label", "probabilities")`` or ``("predictions",)``."""
    name = HEAD_OPS[head][1]
    return ("label", name) if name == "probabilities" else (name,)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise FastnnError(
            "exporting to ONNX needs the onnx package: pip install 'fastnn[onnx]' (or pip install onnx onnxruntime)"
        ) from None
    return onnx


def _labels(classes: np.ndarray):
    """The class labels as the graph returns them, by the rule model files use.

    Integer labels stay int64, float labels double (finite only); anything
    else -- strings, booleans, objects -- becomes its text, as
    :func:`fastnn.save_network` stores it, so a model exports the same way
    before and after a save and load.
    """
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if not np.isfinite(classes).all():
            raise FastnnError("cannot export class labels that are NaN or infinite")
        return classes.astype(np.float64)
    return np.array([str(c) for c in classes], dtype=object)


def _label_tensor(onnx, labels: np.ndarray):
    """The labels as a constant, and the ONNX element type of the ``label`` output."""
    if labels.dtype == np.int64:
        return onnx.numpy_helper.from_array(labels, "classes"), onnx.TensorProto.INT64
    if labels.dtype == np.float64:
        return onnx.numpy_helper.from_array(labels, "classes"), onnx.TensorProto.DOUBLE
    strings = [c.encode("utf-8") for c in labels]
    tensor = onnx.helper.make_tensor("classes", onnx.TensorProto.STRING, [len(strings)], strings)
    return tensor, onnx.TensorProto.STRING


def _check_finite(net: Network) -> None:
    for i, (W, b) in enumerate(net.params.blocks()):
        # min and max propagate NaN and show infinities, without a temporary of the weights' size
        if not all(np.isfinite(a.min()) and np.isfinite(a.max()) for a in (W, b)):
            raise FastnnError(f"cannot export a network whose layer {i} holds NaN or infinite parameters")


def _layer_nodes(onnx, net: Network, raw_pixels: bool) -> tuple[list, list]:
    """``(nodes, initializers)`` from the input to the last layer's raw outputs ``z``."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, initializers, last = [], [], len(net.coefs) - 1
    x = INPUT
    for i, (W, b) in enumerate(net.params.blocks()):
        if i == 0 and raw_pixels:
            W = W / net.dtype.type(255)  # in the network's dtype: one rounding per weight
        initializers += [
            numpy_helper.from_array(np.ascontiguousarray(W), f"coef_{i}"),
            numpy_helper.from_array(np.ascontiguousarray(b), f"intercept_{i}"),
        ]
        pre = "z" if i == last else f"pre_{i}"
        nodes.append(helper.make_node("Gemm", [x, f"coef_{i}", f"intercept_{i}"], [pre], name=f"layer_{i}"))
        if i < last:
            x = f"hidden_{i}"
            nodes.append(helper.make_node(ACTIVATION_OPS[net.activation], [pre], [x], name=f"activation_{i}"))
    return nodes, initializers


def _head_nodes(onnx, net: Network, elem_type) -> tuple[list, list, list]:
    """``(nodes, initializers, graph outputs)`` from ``z`` to the head's outputs (see the module)."""
    helper, TensorProto = onnx.helper, onnx.TensorProto
    op, name = HEAD_OPS[net.head]
    c = net.n_outputs
    kwargs = {"axis": 1} if op == "Softmax" else {}
    nodes = [helper.make_node(op, ["z"], [name], name=net.head, **kwargs)]
    values = [helper.make_tensor_value_info(name, elem_type, ["N", c])]
    if name != "probabilities":
        return nodes, [], values
    if net.head == "logistic" and c > 1:  # multilabel: each output's 0/1, as Network.predict gives
        nodes += [
            helper.make_node("Greater", ["z", "zero"], ["is_on"], name="label_rule"),
            helper.make_node("Cast", ["is_on"], ["label"], to=TensorProto.INT64, name="label_of_rule"),
        ]
        zero = onnx.numpy_helper.from_array(np.zeros((), net.dtype), "zero")
        return nodes, [zero], [helper.make_tensor_value_info("label", TensorProto.INT64, ["N", c]), *values]
    classes, label_type = _label_tensor(onnx, _labels(np.asarray(net.classes)))
    initializers = [classes]
    if net.head == "softmax":
        nodes.append(helper.make_node("ArgMax", ["z"], ["index"], axis=1, keepdims=0, name="label_rule"))
    else:  # one logistic output: class 1 where z > 0
        nodes += [
            helper.make_node("Greater", ["z", "zero"], ["is_on"], name="label_rule"),
            helper.make_node("Cast", ["is_on"], ["index_2d"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["index_2d", "flat"], ["index"]),
        ]
        initializers += [
            onnx.numpy_helper.from_array(np.zeros((), net.dtype), "zero"),
            onnx.numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        ]
    nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"], axis=0, name="label_of_index"))
    return nodes, initializers, [helper.make_tensor_value_info("label", label_type, ["N"]), *values]


def to_onnx(net: Network, *, raw_pixels: bool = False):
    """The network as an ``onnx.ModelProto`` (checked with ``onnx.checker``); see the module doc."""
    onnx = _onnx()
    from onnx import TensorProto, helper

    from . import __version__

    if not isinstance(net, Network):
        raise FastnnError(f"expected a fastnn Network, got {type(net).__name__}")
    _check_finite(net)
    if net.params.flat.nbytes > _MAX_PROTO_BYTES:
        raise FastnnError(
            f"the network's {net.params.flat.nbytes} bytes of parameters are over the 2 GB an ONNX file can hold"
        )
    elem_type = TensorProto.DOUBLE if net.dtype == np.float64 else TensorProto.FLOAT
    nodes, initializers = _layer_nodes(onnx, net, raw_pixels)
    head_nodes, head_initializers, graph_outputs = _head_nodes(onnx, net, elem_type)
    graph = helper.make_graph(
        nodes + head_nodes,
        "fastnn_mlp",
        [helper.make_tensor_value_info(INPUT, elem_type, ["N", net.n_features])],
        graph_outputs,
        initializer=initializers + head_initializers,
    )
    model = helper.make_model(
        graph, producer_name="fastnn", producer_version=__version__, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    model.doc_string = f"fastnn {net.describe()} network ({net.dtype.name}); input " + (
        "raw values 0-255" if raw_pixels else "normalised features (pixels / 255)"
    )
    helper.set_model_props(
        model,
        {
            "fastnn_version": __version__,
            "input_scale": "raw_0_255" if raw_pixels else "normalized_0_1",
            "sizes": json.dumps(list(net.sizes)),
            "activation": net.activation,
            "head": net.head,
            "dtype": net.dtype.name,
            "classes": json.dumps(_labels(np.asarray(net.classes)).tolist()),
            "class_names": json.dumps([str(n) for n in net.class_names]),
        },
    )
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug of ours, but say it in one line
        raise FastnnError(f"the exported graph failed onnx's checker: {exc}") from None
    return model


def export_onnx(net: Network, path, *, raw_pixels: bool = False) -> Path:
    """Write ``net`` as an ONNX model to ``path`` (atomically); returns the path.

    ``raw_pixels`` chooses the input convention: False (default) takes the
    normalised features fastnn's ``predict`` takes, True raw 0-255 pixels.
    """
    path = Path(path)
    model = to_onnx(net, raw_pixels=raw_pixels)
    try:
        atomic_write_bytes(path, model.SerializeToString())
    except OSError as exc:
        raise FastnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
