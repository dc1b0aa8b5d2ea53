"""``fastnn export MODEL -o OUT.onnx``: write a saved model as an ONNX file.

Also ``fastnn-export`` and ``python scripts/export.py``.  Any depth, activation
and head; the graph computes in the model's dtype.  The graph and its checks are
:func:`fastnn.export.export_onnx`'s; it needs the ``onnx`` extra
(``pip install "fastnn[onnx]"``).
"""

from __future__ import annotations

import argparse

HELP = "export a saved model to ONNX (needs the onnx extra)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn export``."""
    p.add_argument("model", help="a model file written by fastnn (model.npz)")
    p.add_argument("-o", "--out", required=True, help="the ONNX file to write (e.g. model.onnx)")
    p.add_argument(
        "--raw-pixels",
        action="store_true",
        help="the graph takes raw 0-255 pixels (the /255 folded into the first layer); "
        "default: normalised features in [0, 1], as fastnn's predict takes",
    )


def run(args: argparse.Namespace) -> None:
    """``fastnn export``: load the model, write the ONNX file, say what was written."""
    from ..export import OPSET, export_onnx
    from ..modelfile import load_network

    net, _ = load_network(args.model)
    out = export_onnx(net, args.out, raw_pixels=args.raw_pixels)
    print(
        f"wrote {out} ({net.describe()}, {net.dtype.name}, input "
        f"{'raw 0-255 pixels' if args.raw_pixels else 'normalised features'}, opset {OPSET})"
    )


def main(argv=None) -> int:
    """Entry point of ``fastnn-export``: ``fastnn export`` alone."""
    from . import main as fastnn_main

    return fastnn_main(argv, command="export", prog="fastnn-export")
