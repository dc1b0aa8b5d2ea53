#!/usr/bin/env python
"""What the first ``fastnn train --backend numba`` costs: compiling on an empty cache, against numpy.

    python benchmarks/cold_start.py [--rounds 3] [--out .benchmarks/cold-start] [-- TRAIN OPTIONS]

Three kinds of run of the same ``fastnn train`` command (``TRAIN OPTIONS`` after
``--``, default ``--epochs 1``; always ``--no-plots --quiet``), each a fresh process:

* ``numpy``: ``--backend numpy``;
* ``numba-cold``: ``--backend numba`` with ``NUMBA_CACHE_DIR`` a private folder
  emptied just before the run, so every kernel compiles (what a first run after
  installing or editing the kernels pays);
* ``numba-warm``: ``--backend numba`` with another private cache folder, filled
  once by an untimed run before the first round, so the kernels load from it.

The kinds take turns over ``--rounds`` rounds (A B C, B C A, ...), so a slow phase
of the shared machine hits each alike.  Each process is timed by the wall clock
from start to exit (imports, loading the data, compiling, training, evaluating,
writing the report).  Reported per kind: the median over rounds; and per pair the
**median over rounds of the difference within a round** (min-max in brackets):
``numba-cold - numpy`` is the first run's extra cost, ``numba-cold - numba-warm``
the compile itself, ``numba-warm - numpy`` what a warm start costs over numpy.
Every run gets the same environment but its ``NUMBA_CACHE_DIR``; the private
folders are removed at the end.  Writes ``cold_start.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average
from _compare_report import atomic_write

REPO = Path(__file__).resolve().parent.parent
KINDS = ("numpy", "numba-cold", "numba-warm")
BACKEND = {"numpy": "numpy", "numba-cold": "numba", "numba-warm": "numba"}
DEFAULT_TRAIN_OPTIONS = ["--epochs", "1"]
#: (later, earlier): each pair's within-round difference, later minus earlier.
DIFFERENCES = (("numba-cold", "numpy"), ("numba-cold", "numba-warm"), ("numba-warm", "numpy"))


def train(kind: str, cache: Path, options: list, out: Path) -> dict:
    """One ``fastnn train`` of ``kind`` in a fresh process: its wall seconds and what it recorded."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), MPLBACKEND="Agg")
    command = [
        sys.executable,
        "-m",
        "fastnn",
        "train",
        *options,
        "--backend",
        BACKEND[kind],
        "--no-plots",
        "--quiet",
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise SystemExit(f"{kind} run failed: {tail[-1] if tail else proc.returncode}\n{' '.join(command)}")
    record = json.loads((out / "metrics.json").read_text())
    epochs = record.get("history", {}).get("epochs", [])
    return {
        "seconds": seconds,
        "train_seconds": record.get("train_seconds"),
        "first_epoch_seconds": epochs[0]["seconds"] if epochs else None,
        "load": load_average(),
    }


def spread(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / ".benchmarks" / "cold-start",
        help="folder for cold_start.json (default .benchmarks/cold-start)",
    )
    p.add_argument(
        "train_options",
        nargs="*",
        metavar="-- TRAIN OPTIONS",
        help=f"options of fastnn train (default {' '.join(DEFAULT_TRAIN_OPTIONS)})",
    )
    args = p.parse_args()
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    options = args.train_options or DEFAULT_TRAIN_OPTIONS
    work = Path(tempfile.mkdtemp(prefix="fastnn-cold-start-"))
    caches = {"numpy": work / "warm-cache", "numba-cold": work / "cold-cache", "numba-warm": work / "warm-cache"}
    try:
        load_start = load_average()
        print(f"load {load_start}; filling the warm cache (untimed)", file=sys.stderr, flush=True)
        train("numba-warm", caches["numba-warm"], options, work / "prime")
        runs = {kind: [] for kind in KINDS}
        for r in range(args.rounds):
            k = r % len(KINDS)
            for kind in KINDS[k:] + KINDS[:k]:
                if kind == "numba-cold":  # empty, so that every kernel compiles
                    shutil.rmtree(caches[kind], ignore_errors=True)
                    caches[kind].mkdir()
                res = train(kind, caches[kind], options, work / f"{kind}-{r}")
                runs[kind].append(res)
                print(
                    f"round {r + 1}: {kind:10} {res['seconds']:.2f} s (first epoch "
                    f"{res['first_epoch_seconds'] or float('nan'):.2f} s; load {res['load'][:1]})",
                    file=sys.stderr,
                    flush=True,
                )
        load_end = load_average()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {kind: spread([r["seconds"] for r in runs[kind]]) for kind in KINDS}
    diffs = {
        f"{a} - {b}": spread([x["seconds"] - y["seconds"] for x, y in zip(runs[a], runs[b])]) for a, b in DIFFERENCES
    }
    lines = [
        f"fastnn train {' '.join(options)} --no-plots --quiet: {args.rounds} rounds, each run a fresh "
        f"process, order rotated; load average {load_start} at start, {load_end} at end.",
        "",
        "| run | wall s (median) | min-max |",
        "|---|---:|---|",
    ]
    lines += [f"| {kind} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} |" for kind, s in summary.items()]
    lines += ["", "| difference within a round | median s | min-max |", "|---|---:|---|"]
    lines += [f"| {name} | {d['median']:+.2f} | {d['min']:+.2f} to {d['max']:+.2f} |" for name, d in diffs.items()]
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "train_options": options,
        "rounds": args.rounds,
        "load_start": load_start,
        "load_end": load_end,
        "summary": summary,
        "differences": diffs,
        "runs": runs,
        "markdown": table,
    }
    atomic_write(args.out / "cold_start.json", lambda fh: fh.write(json.dumps(report, indent=2).encode()))
    print(f"\nwrote {args.out / 'cold_start.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
