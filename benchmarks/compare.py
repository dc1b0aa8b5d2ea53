#!/usr/bin/env python
"""Train the same network with fastnn (numpy, numba), PyTorch CPU and scikit-learn, side by side.

    python benchmarks/compare.py [--epochs 5] [--rounds 3] [--hidden 128] [--batch-size 128]
        [--lr 0.1] [--optimizer sgd|momentum|nesterov|adam] [--weight-decay 0]
        [--schedule constant|step|cosine|onecycle] [--data mnist|fashion-mnist] [--limit N]
        [--target-accuracy 0.985] [--only numpy,numba,torch,sklearn] [--no-rotate]
        [--out .benchmarks/compare]

Method.  On a shared machine absolute timings drift (1.5x within minutes is
common), and implementations timed one after another in one process disturb
each other (thread pools left spinning, allocator state, which ran first).  So:

* every measurement runs in its **own fresh Python process** (this file with
  ``--worker``, code in ``_compare_worker.py``), which loads the data, trains
  ``--epochs`` epochs and prints one JSON line: per-epoch seconds and losses,
  test accuracy, its peak RSS;
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

Same work for all: 784-h-10 ReLU/softmax, mean cross-entropy, the initial
weights of ``fastnn.init_network(784, h, 10, seed)``.  fastnn is timed through
``fastnn.train`` (``History`` epoch seconds: the epoch's permutation + training
steps; data checks and the per-epoch test evaluation are outside them).  PyTorch
runs a hand-written loop over fastnn's own epoch permutations (computed before
the timer) with ``torch.optim`` mirroring the optimizer (SGD with momentum /
Nesterov, or Adam; weight decay on the weights only, as fastnn) and the same
per-step rates from ``fastnn.schedules.learning_rates``.  scikit-learn
(``MLPClassifier``, one ``partial_fit`` per epoch, its own shuffling) is run
only for plain SGD with a constant rate and no weight decay.

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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPLEMENTATIONS = ("numpy", "numba", "torch", "sklearn")
LABELS = {"numpy": "fastnn-numpy", "numba": "fastnn-numba", "torch": "PyTorch CPU",
          "sklearn": "scikit-learn MLP"}
PACKAGES = {"numpy": "fastnn", "numba": "numba", "torch": "torch", "sklearn": "sklearn"}
D, C = 784, 10
REPO = Path(__file__).resolve().parent.parent


def training_flops(n: int, d: int, h: int, c: int) -> int:
    """FLOPs of one epoch over ``n`` samples (multiply-add = 2): forward X W1, A1 W2; backward
    A1^T dZ2, dZ2 W2^T, X^T dZ1 -> 4ndh + 6nhc (elementwise work left out)."""
    return 4 * n * d * h + 6 * n * h * c


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


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


def steady(res: dict) -> float:
    secs = res["epoch_seconds"]
    return statistics.median(secs[1:]) if len(secs) > 1 else secs[0]


def ratio_stats(runs: dict, name: str, ref: str) -> dict | None:
    """Median, min and max over rounds of (name's s/epoch / ref's s/epoch) within the same round."""
    if ref not in runs:
        return None
    ratios = [steady(a) / steady(b) for a, b in zip(runs[name], runs[ref]) if "error" not in a and "error" not in b]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)} if ratios else None


def time_to_accuracy(res: dict, target: float) -> tuple[float, int] | None:
    total = 0.0
    for epoch, (secs, acc) in enumerate(zip(res["epoch_seconds"], res.get("epoch_accuracy") or [])):
        total += secs
        if acc >= target:
            return total, epoch + 1
    return None


def summarise(runs: dict, flops: int, n: int, peak: float, target: float | None) -> dict:
    summary = {}
    for name, results in runs.items():
        ok = [r for r in results if "error" not in r]
        if not ok:
            summary[name] = {"implementation": LABELS[name], "error": results[0]["error"]}
            continue
        epoch_s = statistics.median(steady(r) for r in ok)
        row = {"implementation": LABELS[name], "rounds_ok": len(ok), "epoch_s": epoch_s,
               "epoch_s_per_round": [steady(r) for r in ok],
               "first_epoch_s": statistics.median(r["epoch_seconds"][0] for r in ok),
               "samples_per_s": n / epoch_s, "gflops": flops / epoch_s / 1e9,
               "percent_of_peak": 100 * flops / epoch_s / 1e9 / peak,
               "test_accuracy": statistics.median(r["test_accuracy"] for r in ok),
               "final_train_loss": statistics.median(r["train_loss"][-1] for r in ok),
               "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
               "extra_mb": max((r["extra_mb"] for r in ok if r.get("extra_mb") is not None), default=None),
               "vs_numba": ratio_stats(runs, name, "numba"), "vs_numpy": ratio_stats(runs, name, "numpy")}
        if target is not None and ok[0].get("epoch_accuracy"):
            hits = [t for t in (time_to_accuracy(r, target) for r in ok) if t]
            row["time_to_accuracy"] = {"target": target, "reached_in_rounds": len(hits), "rounds": len(ok),
                                       "seconds": statistics.median(t[0] for t in hits) if hits else None,
                                       "epoch": statistics.median(t[1] for t in hits) if hits else None}
        summary[name] = row
    return summary


def _ratio(r: dict | None) -> str:
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})" if r else "-"


def markdown(summary: dict, cfg, meta: dict) -> str:
    e = cfg.epochs
    later = f"median of epochs 2..{e}" if e > 1 else "epoch 1 only"
    lines = [f"Config: 784-{cfg.hidden}-10 on {cfg.data} ({meta['n_train']} train / {meta['n_test']} test), "
             f"{cfg.optimizer}, lr {cfg.lr} ({cfg.schedule}), weight decay {cfg.weight_decay}, batch "
             f"{cfg.batch_size}, {e} epochs; {meta['flops'] / 1e9:.1f} GFLOP per epoch (4ndh + 6nhc, the dense "
             f"products: fastnn-numba skips zero pixels, so its dense-equivalent rate can pass the matmul peak).",
             f"Method: {cfg.rounds} rounds, each implementation in a fresh process per round, order "
             f"{'rotated' if cfg.rotate else 'fixed'}; s/epoch = median over rounds of each run's {later}; "
             f"ratios = median (min-max) over rounds of the within-round ratio.",
             f"Peak float32 matmul (2048x2048, best of 5): {meta['peak_start']:.1f} GFLOP/s at start, "
             f"{meta['peak_end']:.1f} at end.  Load average (1/5/15 min): {meta['load_start']} at start, "
             f"{meta['load_end']} at end.", "",
             "| implementation | 1st epoch (s) | s/epoch | s/epoch per round | samples/s | GFLOP/s | % of peak "
             "| test acc | time vs fastnn-numba | time vs fastnn-numpy | peak RSS MB (+training) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in summary.values():
        if "error" in row:
            lines.append(f"| {row['implementation']} | failed: {row['error']} |" + " |" * 9)
            continue
        extra = f" (+{row['extra_mb']:.0f})" if row["extra_mb"] is not None else ""
        lines.append(f"| {row['implementation']} | {row['first_epoch_s']:.3f} | {row['epoch_s']:.3f} "
                     f"| {', '.join(f'{s:.3f}' for s in row['epoch_s_per_round'])} | {row['samples_per_s']:,.0f} "
                     f"| {row['gflops']:.1f} | {row['percent_of_peak']:.1f}% | {100 * row['test_accuracy']:.2f}% "
                     f"| {_ratio(row['vs_numba'])} | {_ratio(row['vs_numpy'])} | {row['peak_rss_mb']:.0f}{extra} |")
    tta = {k: r["time_to_accuracy"] for k, r in summary.items() if "time_to_accuracy" in r}
    if tta:
        lines += ["", f"Time to {100 * cfg.target_accuracy:.2f}% test accuracy (training seconds incl. "
                  "epoch 1, evaluation untimed; median over the rounds that reached it):", "",
                  "| implementation | seconds | epoch | reached in |", "|---|---:|---:|---:|"]
        for k, t in tta.items():
            secs = f"{t['seconds']:.2f}" if t["seconds"] is not None else f"not reached in {e} epochs"
            ep = f"{t['epoch']:g}" if t["epoch"] is not None else "-"
            lines.append(f"| {LABELS[k]} | {secs} | {ep} | {t['reached_in_rounds']}/{t['rounds']} rounds |")
    for name, reason in meta["skipped"].items():
        lines.append(f"\nSkipped {LABELS[name]}: {reason}.")
    m = meta.get("machine") or {}
    if m:
        lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores; BLAS: {'; '.join(m['blas'])}; numba "
                  f"{m['numba']} ({m['numba_threads']} threads); Python {m['python']}, NumPy {m['numpy']}."]
    return "\n".join(lines)


def atomic_write(path: Path, write) -> None:
    """``write(binary file)`` into a temp file next to ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 -> what a plain open() would give
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary.values() if "error" not in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r["implementation"] for r in rows]
    values = [r["samples_per_s"] / 1000 for r in rows]
    lo = [v - min(r["epoch_s"] / s for s in r["epoch_s_per_round"]) * v for v, r in zip(values, rows)]
    hi = [max(r["epoch_s"] / s for s in r["epoch_s_per_round"]) * v - v for v, r in zip(values, rows)]
    bars = ax.bar(names, values, yerr=[lo, hi], capsize=4,
                  color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][:len(rows)])
    ax.bar_label(bars, labels=[f"{v:,.0f}k\n{r['epoch_s']:.2f} s" for v, r in zip(values, rows)],
                 fontsize=8, label_type="center")
    ax.set_ylabel("training throughput (thousand samples/s)")
    ax.set_title("Median epoch over rounds (bars: min-max of the rounds)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimizer", choices=("sgd", "momentum", "nesterov", "adam"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 on the weights (not biases)")
    p.add_argument("--schedule", choices=("constant", "step", "cosine", "onecycle"), default="constant")
    p.add_argument("--data", choices=("mnist", "fashion-mnist"), default="mnist")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training rows (0: all)")
    p.add_argument("--target-accuracy", type=float, default=None, metavar="ACC",
                   help="also report the training time until the test accuracy reaches ACC (e.g. 0.985)")
    p.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                   help="comma-separated subset of numpy,numba,torch,sklearn")
    p.add_argument("--no-rotate", dest="rotate", action="store_false", help="same order in every round")
    p.add_argument("--out", type=Path, default=REPO / ".benchmarks" / "compare",
                   help="folder for compare.json and compare.png (default .benchmarks/compare)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1 or args.limit < 0:
        p.error("--epochs and --rounds must be >= 1, --limit >= 0")
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(IMPLEMENTATIONS)
    if unknown:
        p.error(f"unknown implementation(s) {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _compare_worker import run_worker

        print(json.dumps(run_worker(args.worker, argparse.Namespace(**json.loads(args.worker_config)))))
        return 0
    wall0 = time.perf_counter()
    cfg = {k: v for k, v in vars(args).items() if k not in ("out", "only", "worker", "worker_config")}
    cfg.update(momentum=0.9, beta2=0.999, evaluate=args.target_accuracy is not None)
    names, skipped = [], {}
    for name in (n for n in IMPLEMENTATIONS if n in args.only):
        if importlib.util.find_spec(PACKAGES[name]) is None:
            skipped[name] = "not installed; pip install 'fastnn[peers]'"
        elif name == "sklearn" and (args.optimizer, args.schedule, args.weight_decay) != ("sgd", "constant", 0):
            skipped[name] = (f"its MLPClassifier is only compared on plain SGD with a constant rate and no weight "
                             f"decay (got {args.optimizer}, {args.schedule}, weight decay {args.weight_decay})")
        else:
            names.append(name)
    for name, reason in skipped.items():
        print(f"skipping {LABELS[name]}: {reason}", file=sys.stderr)
    if not names:
        print("nothing to run", file=sys.stderr)
        return 1

    load_start = _load()
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
                print(f"round {rnd + 1}: {LABELS[name]:16} {steady(res):.3f} s/epoch (epochs {secs}; "
                      f"acc {res['test_accuracy']:.4f}; load {res['load'][:1]})", file=sys.stderr)
    end = spawn("peak", {})
    load_end = _load()

    ok = [r for rs in runs.values() for r in rs if "error" not in r]
    n = ok[0]["n_train"] if ok else 0
    flops = training_flops(n, D, args.hidden, C)
    peak = max(start["gflops"], end.get("gflops", 0.0))
    meta = {"n_train": n, "n_test": ok[0]["n_test"] if ok else 0, "flops": flops,
            "peak_start": start["gflops"], "peak_end": end.get("gflops", float("nan")),
            "load_start": load_start, "load_end": load_end, "skipped": skipped, "machine": start.get("machine")}
    summary = summarise(runs, flops, n, peak, args.target_accuracy)
    table = markdown(summary, args, meta)
    print(table)
    wall = time.perf_counter() - wall0
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"config": cfg, "implementations": names, **meta, "flops_per_epoch": flops,
              "flops_formula": "4*n*d*h + 6*n*h*c", "peak_matmul_gflops": peak, "summary": summary,
              "runs": runs, "wall_seconds": wall, "markdown": table}
    atomic_write(args.out / "compare.json", lambda fh: fh.write(json.dumps(report, indent=2).encode()))
    m = start.get("machine", {})
    plot(summary, args.out / "compare.png", f"784-{args.hidden}-10, batch {args.batch_size}, {args.data}, "
         f"{args.optimizer}; {m.get('cpu', '?')}, {m.get('cores', '?')} cores")
    print(f"\nwrote {args.out / 'compare.json'} and {args.out / 'compare.png'} ({wall:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
