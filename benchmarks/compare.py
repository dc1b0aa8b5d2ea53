#!/usr/bin/env python
"""Train the same network with fastnn (numpy, numba), PyTorch CPU and scikit-learn, side by side.

    python benchmarks/compare.py [--epochs 5] [--rounds 3] [--hidden 128 | 100,100] [--activation relu]
        [--batch-size 128] [--lr 0.1] [--optimizer sgd|momentum|nesterov|adam] [--weight-decay 0]
        [--schedule constant|step|cosine|onecycle] [--data mnist|fashion-mnist] [--limit N]
        [--target-accuracy 0.985] [--only numpy,numba,torch,sklearn] [--no-rotate]
        [--out .benchmarks/compare]

Method.  On a shared machine absolute timings drift (1.5x within minutes is
common), and implementations timed one after another in one process disturb
each other (thread pools left spinning, allocator state, which ran first).  So:

* every measurement runs in its **own fresh Python process** (this file with
  ``--worker``, code in ``_compare_worker.py``), which loads the data, trains
  ``--epochs`` epochs and prints one JSON line: per-epoch seconds and losses,
  test accuracy, its peak RSS (the parent's tables and figure: ``_compare_report.py``);
* the parent runs the implementations **interleaved over rounds** -- A B C D,
  then B C D A, ... (rotated unless ``--no-rotate``) -- so slow phases of the
  machine hit every implementation alike;
* a run's speed is the median of its epochs 2..E (epoch 1 includes loading or
  compiling numba's kernels and warming caches; it is reported separately);
  the reported s/epoch is the median over rounds;
* relative speed is the **median over rounds of the ratio within a round**
  (with its min-max), not a ratio of medians: runs in the same round saw
  nearly the same machine, so the ratio is far steadier than either time.

The matmul peak (best of a few 2048x2048 float32 ``np.matmul``, in a fresh
process) and the load average are measured at the start and the end; if they
moved a lot, distrust the absolute numbers more than the ratios.

Same work for all: the network of ``--hidden`` layers (comma-separated, as
``fastnn train --hidden``: ``100,100`` is 784-100-100-10) with the ``--activation``
between them and a softmax output, mean cross-entropy, the initial weights of
``fastnn.init_network(784, hidden, 10, seed, activation=...)``.  fastnn is timed
through ``fastnn.train`` (``History`` epoch seconds: the epoch's permutation +
training steps; data checks and the per-epoch test evaluation are outside them).
PyTorch trains the idiomatic ``nn.Sequential`` of ``nn.Linear`` layers and that
activation (``_torch_mlp.py``) in a hand-written loop over fastnn's own epoch
permutations (computed before the timer), with ``torch.optim`` mirroring the
optimizer (SGD with momentum / Nesterov, or Adam; weight decay on the weights
only, as fastnn) and the same per-step rates from
``fastnn.schedules.learning_rates``.  scikit-learn (``MLPClassifier`` with
``hidden_layer_sizes`` the same list, one ``partial_fit`` per epoch, its own
shuffling) runs only where its recipe matches: plain SGD with a constant rate and
no weight decay.

GFLOP/s count the dense products of the forward and backward passes, the first
layer included as dense (``_compare_report.training_flops``): fastnn-numba skips
zero pixels, so its rate is a dense-equivalent one and can pass the matmul peak.

``--target-accuracy`` makes fastnn and PyTorch evaluate the test set after every
epoch (untimed) and reports the training time until the accuracy first reaches
the target (cumulative epoch seconds, epoch 1 included).

Writes ``compare.json`` and ``compare.png`` (atomically) into ``--out`` and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from fastnn.activations import ACTIVATIONS
from fastnn.config import TrainConfig, layer_sizes
from fastnn.errors import FastnnError
from fastnn.optimizers import OPTIMIZERS
from fastnn.schedules import SCHEDULES

from _common import C, D, load_average, shape
from _compare_report import FLOPS_FORMULA, LABELS, atomic_write, markdown, plot, steady, summarise, training_flops

IMPLEMENTATIONS = ("numpy", "numba", "torch", "sklearn")
PACKAGES = {"numpy": "fastnn", "numba": "numba", "torch": "torch", "sklearn": "sklearn"}
REPO = Path(__file__).resolve().parent.parent
#: The one recipe scikit-learn's MLPClassifier is compared on: (optimizer, schedule, weight decay).
SKLEARN_RECIPE = ("sgd", "constant", 0.0)


# --- parent side ---------------------------------------------------------------------


def spawn(kind: str, cfg: dict) -> dict:
    """Run ``kind`` (an implementation, or "peak"/"peak+info") in a fresh process; its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--worker-config", json.dumps(cfg)]
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": tail[-1] if tail else f"exit code {proc.returncode}"}
    return {**json.loads(lines[-1]), "process_seconds": time.perf_counter() - t0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--hidden",
        type=layer_sizes,
        default=(128,),
        metavar="SIZES",
        help="hidden layer sizes, comma-separated, as fastnn train --hidden (default 128)",
    )
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="the hidden layers' activation")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 on the weights (not biases)")
    p.add_argument("--schedule", choices=SCHEDULES, default="constant")
    p.add_argument("--data", choices=("mnist", "fashion-mnist"), default="mnist")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training rows (0: all)")
    p.add_argument(
        "--target-accuracy",
        type=float,
        default=None,
        metavar="ACC",
        help="also report the training time until the test accuracy reaches ACC (e.g. 0.985)",
    )
    p.add_argument(
        "--only", default=",".join(IMPLEMENTATIONS), help="comma-separated subset of numpy,numba,torch,sklearn"
    )
    p.add_argument("--no-rotate", dest="rotate", action="store_false", help="same order in every round")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / ".benchmarks" / "compare",
        help="folder for compare.json and compare.png (default .benchmarks/compare)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1 or args.limit < 0:
        p.error("--epochs and --rounds must be >= 1, --limit >= 0")
    try:  # the layer sizes and activation fastnn train would accept, with its messages
        TrainConfig(hidden=args.hidden, activation=args.activation).validate()
    except FastnnError as exc:
        p.error(str(exc))
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(IMPLEMENTATIONS)
    if unknown:
        p.error(f"unknown implementation(s) {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        from _compare_worker import run_worker

        print(json.dumps(run_worker(args.worker, argparse.Namespace(**json.loads(args.worker_config)))))
        return 0
    wall0 = time.perf_counter()
    cfg = {k: v for k, v in vars(args).items() if k not in ("out", "only", "worker", "worker_config")}
    cfg["hidden"] = list(args.hidden)
    defaults = TrainConfig()  # the optimizers' other hyperparameters, as fastnn train has them
    cfg.update(momentum=defaults.momentum, beta2=defaults.beta2, evaluate=args.target_accuracy is not None)
    names, skipped = [], {}
    for name in (n for n in IMPLEMENTATIONS if n in args.only):
        if importlib.util.find_spec(PACKAGES[name]) is None:
            skipped[name] = "not installed; pip install 'fastnn[peers]'"
        elif name == "sklearn" and (args.optimizer, args.schedule, args.weight_decay) != SKLEARN_RECIPE:
            skipped[name] = (
                f"its MLPClassifier is only compared on plain SGD with a constant rate and no weight "
                f"decay (got {args.optimizer}, {args.schedule}, weight decay {args.weight_decay})"
            )
        else:
            names.append(name)
    for name, reason in skipped.items():
        print(f"skipping {LABELS[name]}: {reason}", file=sys.stderr)
    if not names:
        print("nothing to run", file=sys.stderr)
        return 1

    load_start = load_average()
    start = spawn("peak+info", {})
    if "error" in start:
        raise SystemExit(f"peak measurement failed: {start['error']}")
    print(f"load {load_start}; peak float32 matmul {start['gflops']:.1f} GFLOP/s", file=sys.stderr)
    runs = {name: [] for name in names}
    for rnd in range(args.rounds):
        k = rnd % len(names) if args.rotate else 0
        for name in names[k:] + names[:k]:
            res = spawn(name, cfg)
            runs[name].append(res)
            if "error" in res:
                print(f"round {rnd + 1}: {LABELS[name]} FAILED: {res['error']}", file=sys.stderr)
            else:
                secs = ", ".join(f"{s:.3f}" for s in res["epoch_seconds"])
                print(
                    f"round {rnd + 1}: {LABELS[name]:16} {steady(res):.3f} s/epoch (epochs {secs}; "
                    f"acc {res['test_accuracy']:.4f}; load {res['load'][:1]})",
                    file=sys.stderr,
                )
    end = spawn("peak", {})
    load_end = load_average()

    ok = [r for rs in runs.values() for r in rs if "error" not in r]
    n = ok[0]["n_train"] if ok else 0
    flops = training_flops(n, (D, *args.hidden, C))
    peak = max(start["gflops"], end.get("gflops", 0.0))
    meta = {
        "n_train": n,
        "n_test": ok[0]["n_test"] if ok else 0,
        "flops": flops,
        "peak_start": start["gflops"],
        "peak_end": end.get("gflops", float("nan")),
        "load_start": load_start,
        "load_end": load_end,
        "skipped": skipped,
        "machine": start.get("machine"),
    }
    summary = summarise(runs, flops, n, peak, args.target_accuracy)
    table = markdown(summary, args, meta)
    print(table)
    wall = time.perf_counter() - wall0
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "config": cfg,
        "implementations": names,
        **meta,
        "flops_per_epoch": flops,
        "flops_formula": FLOPS_FORMULA,
        "peak_matmul_gflops": peak,
        "summary": summary,
        "runs": runs,
        "wall_seconds": wall,
        "markdown": table,
    }
    atomic_write(args.out / "compare.json", lambda fh: fh.write(json.dumps(report, indent=2).encode()))
    m = start.get("machine", {})
    plot(
        summary,
        args.out / "compare.png",
        f"{shape(args.hidden)} {args.activation}, batch {args.batch_size}, "
        f"{args.data}, {args.optimizer}; {m.get('cpu', '?')}, {m.get('cores', '?')} cores",
    )
    print(f"\nwrote {args.out / 'compare.json'} and {args.out / 'compare.png'} ({wall:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
