"""Export a trained network to ONNX, so it runs wherever models run (onnxruntime, C++, browsers).

The graph is the network itself, with nothing fastnn-specific left to do:

* input ``pixels``: float32 ``[N, d]`` with a dynamic batch dimension ``N``;
  by default *normalised* inputs, exactly what fastnn's own ``predict`` takes
  (MNIST pixels divided by 255); with ``raw_pixels=True``, raw 0-255 pixels, the
  division folded into the first layer's weights (``W1 / 255``), so the graph
  has no extra operator;
* ``Gemm -> Relu -> Gemm -> Softmax``: output ``probabilities``, float32 ``[N, C]``;
* ``ArgMax -> Gather`` over the class labels: output ``label``, ``[N]``, int64
  for integer labels (MNIST's digits), double for float labels, and the text
  of any other labels (strings, booleans; as ``MLPClassifier`` may have been
  fitted on), the rule model files use.

The model's metadata (``metadata_props``) holds fastnn's version, the input
convention, the class labels and names, and the shapes.  Opset 17 and IR
version 8: what current onnxruntime releases run.  Needs the ``onnx`` package
(``pip install -e ".[onnx]"``, which also brings onnxruntime to run the file).
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
OUTPUTS = ("label", "probabilities")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise FastnnError("exporting to ONNX needs the onnx package: pip install 'fastnn[onnx]' "
                          "(or pip install onnx onnxruntime)") from None
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


def _check_shapes(net: Network) -> None:
    d, h = net.W1.shape
    c = net.W2.shape[1]
    if net.b1.shape != (h,) or net.W2.shape != (h, c) or net.b2.shape != (c,):
        raise FastnnError(f"the network's parameters do not fit together: W1 {net.W1.shape}, b1 {net.b1.shape}, "
                          f"W2 {net.W2.shape}, b2 {net.b2.shape}")


def to_onnx(net: Network, *, raw_pixels: bool = False):
    """The network as an ``onnx.ModelProto`` (checked with ``onnx.checker``); see the module doc."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    from . import __version__

    if not isinstance(net, Network):
        raise FastnnError(f"expected a fastnn Network, got {type(net).__name__}")
    _check_shapes(net)
    labels = _labels(np.asarray(net.classes))
    W1 = net.W1 / np.float32(255.0) if raw_pixels else net.W1
    params = {"W1": W1, "b1": net.b1, "W2": net.W2, "b2": net.b2}
    initializers = [numpy_helper.from_array(np.ascontiguousarray(a, np.float32), name)
                    for name, a in params.items()]
    classes, label_type = _label_tensor(onnx, labels)
    initializers.append(classes)
    nodes = [
        helper.make_node("Gemm", [INPUT, "W1", "b1"], ["hidden_pre"], name="layer1"),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu"),
        helper.make_node("Gemm", ["hidden", "W2", "b2"], ["logits"], name="layer2"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
        helper.make_node("ArgMax", ["logits"], ["index"], axis=1, keepdims=0, name="argmax"),
        helper.make_node("Gather", ["classes", "index"], ["label"], axis=0, name="label_of_index"),
    ]
    graph = helper.make_graph(
        nodes, "fastnn_mlp",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", net.n_features])],
        [helper.make_tensor_value_info("label", label_type, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", net.n_classes])],
        initializer=initializers)
    model = helper.make_model(graph, producer_name="fastnn", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = (f"fastnn {net.n_features}-{net.hidden}-{net.n_classes} ReLU/softmax network; input "
                        + ("raw pixels 0-255" if raw_pixels else "normalised features (pixels / 255)"))
    helper.set_model_props(model, {
        "fastnn_version": __version__,
        "input_scale": "raw_0_255" if raw_pixels else "normalized_0_1",
        "classes": json.dumps(labels.tolist()),
        "class_names": json.dumps([str(n) for n in net.class_names]),
        "shape": json.dumps([net.n_features, net.hidden, net.n_classes]),
    })
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
