#!/usr/bin/env python
"""Wall time of one ``fastnn sweep`` on the local cluster against the same trials run one after another.

    python benchmarks/sweep_vs_sequential.py [--rounds 3] [--grid hidden=128,256 --grid lr=0.1,0.5]
        [--seeds 3] [--epochs 15] [--data mnist] [--out .benchmarks/sweep]

A: ``fastnn sweep`` (a LocalCluster of cores / 1 single-threaded workers),
started as a fresh process.  B: every trial of the same grid as its own
``fastnn train`` process, one after another, each using every core (the
default), as a shell loop would.  Both wall times include process start-up,
loading the data and writing the outputs.  The two alternate over rounds
(A B, B A, A B, ...) so a slow phase of the shared machine hits both; the
speed-up is the median over rounds of B / A within a round.  The accuracies
are compared too: they agree to the fourth digit, not exactly, because the sweep's
trials run on one thread and ``fastnn train`` on all cores, and another thread count
sums in another order (``fastnn train --threads 1`` reproduces a trial exactly).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fastnn(*argv) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fastnn", *map(str, argv)],
        check=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--grid", action="append", default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--data", default="mnist")
    p.add_argument("--out", default=".benchmarks/sweep")
    args = p.parse_args()
    grid = args.grid or ["hidden=128,256", "lr=0.1,0.5"]
    out = Path(args.out)
    fields = [g.split("=")[0] for g in grid]
    values = [g.split("=")[1].split(",") for g in grid]
    points = list(itertools.product(*values))
    common = ["--data", args.data, "--epochs", args.epochs]

    def sweep(r):
        folder = out / f"sweep-{r}"
        seconds = fastnn(
            "sweep",
            *common,
            *[a for g in grid for a in ("--grid", g)],
            "--seeds",
            args.seeds,
            "--out",
            folder,
            "--no-plots",
            "--quiet",
        )
        rows = json.loads((folder / "sweep.json").read_text())["trials"]
        return seconds, {(*(str(row[f]) for f in fields), row["seed"]): row["test_accuracy"] for row in rows}

    def sequential(r):
        t0 = time.perf_counter()
        accuracies = {}
        for point in points:
            for seed in range(args.seeds):
                folder = out / f"seq-{r}" / "-".join([*point, str(seed)])
                options = [a for f, v in zip(fields, point) for a in (f"--{f.replace('_', '-')}", v)]
                fastnn("train", *common, *options, "--seed", seed, "--out", folder, "--no-plots", "--quiet")
                metrics = json.loads((folder / "metrics.json").read_text())
                key = (*(str(metrics["config"][f]) for f in fields), seed)
                accuracies[key] = metrics["test"]["accuracy"]
        return time.perf_counter() - t0, accuracies

    rounds = []
    for r in range(args.rounds):
        order = [("sweep", sweep), ("sequential", sequential)]
        if r % 2:
            order.reverse()
        times = {}
        for name, run in order:
            times[name], accuracies = run(r)
            times[name + "_accuracy"] = accuracies
            print(f"round {r + 1}: {name} {times[name]:.1f} s", file=sys.stderr, flush=True)
        same = times["sweep_accuracy"] == times["sequential_accuracy"]
        rounds.append(
            {
                "sweep": times["sweep"],
                "sequential": times["sequential"],
                "ratio": times["sequential"] / times["sweep"],
                "same_accuracies": same,
            }
        )
    ratios = [r["ratio"] for r in rounds]
    summary = {
        "grid": grid,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "trials": len(points) * args.seeds,
        "rounds": rounds,
        "median_ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "sweep_median_s": statistics.median(r["sweep"] for r in rounds),
        "sequential_median_s": statistics.median(r["sequential"] for r in rounds),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
