#!/usr/bin/env python
"""A fastnn preset against the same recipe in PyTorch CPU written for speed: time to a target accuracy.

    python benchmarks/record_compare.py [--preset record] [--data mnist|fashion-mnist] [--rounds 2]
        [--seeds 0,1] [--target 0.995] [--epochs N] [--threads 2] [--torch-augment-threads N]
        [--only fastnn,torch] [--no-rotate] [--json PATH]

Each round trains, for every seed, the preset with fastnn (``fastnn train --preset
NAME --seed S --threads T --out TMP --no-plots --quiet``, in-process in a fresh
worker) and with PyTorch (``torch_record.py``: the same recipe, data split, initial
weights and shuffles, the distortions drawn per batch on tensors), each in its own
fresh process, taking turns (fastnn first in even pairs, PyTorch first in odd ones
unless ``--no-rotate``), so slow phases of a shared machine hit both alike.
``--epochs`` overrides the preset's epochs for quick runs.  Before the first round,
one untimed fastnn run of one epoch on 512 rows fills numba's compile cache.

fastnn's side is the real ``fastnn train``; its worker also evaluates the test
split after every epoch (wrapping ``fastnn.training.Run.next_epoch``: after the
epoch's seconds were taken, so they do not include it), since the report keeps
per-epoch dev accuracies only.  Times are the epochs' own seconds as each side
records them (the shuffle, the distortions and the training steps; no
evaluation, loading or report), summed.

Reports per implementation and run: the total training time, the final dev and
test accuracy, the first epoch whose test (and dev) accuracy reached ``--target``
and the training time to it; and the median over pairs of the ratio fastnn /
PyTorch within a pair (same round and seed): of the time to the target test
accuracy where both reached it, and of the total time of the same epochs.
Prints a markdown table; ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCH_SCRIPT = HERE / "torch_record.py"
IMPLEMENTATIONS = ("fastnn", "torch")
LABELS = {"fastnn": "fastnn (numba)", "torch": "PyTorch CPU, batched"}


# --- workers (fresh processes) --------------------------------------------------------


def fastnn_worker(cfg: dict) -> dict:
    """``fastnn train`` in this process, with the test accuracy recorded after every epoch."""
    import numpy as np

    import fastnn.training as training
    from fastnn import load_dataset
    from fastnn.cli import main

    test = load_dataset(cfg["data"], dev_size=0)
    X_test, y_test = test.X_test, test.y_test
    next_epoch = training.Run.next_epoch

    def with_test(self, stop=None):
        row = next_epoch(self, stop)  # its "seconds" are taken before this evaluation
        row["test_accuracy"] = float(np.mean(self.net.predict(X_test, self.config.backend) == y_test))
        return row

    training.Run.next_epoch = with_test
    with tempfile.TemporaryDirectory() as out:
        argv = ["train", "--preset", cfg["preset"], "--data", cfg["data"], "--seed", str(cfg["seed"])]
        argv += ["--threads", str(cfg["threads"]), "--out", out, "--no-plots", "--quiet"]
        argv += ["--epochs", str(cfg["epochs"])] if cfg["epochs"] is not None else []
        code = main(argv)
        if code:
            raise SystemExit(f"fastnn train exited with status {code}")
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    rows, total = [], 0.0
    for r in metrics["history"]["epochs"]:
        total += r["seconds"]
        rows.append({**r, "train_seconds": total})
    return {
        "epochs": rows,
        "train_seconds": total,
        "wall_train_seconds": metrics["train_seconds"],  # with per-epoch evaluation and checkpoints
        "test_accuracy": metrics.get("test", {}).get("accuracy"),
        "dev_accuracy": metrics.get("dev", {}).get("accuracy"),
        "n_train": metrics["n_train"],
        "n_dev": metrics["n_dev"],
        "notes": f"fastnn, backend {metrics['config']['backend']}, {metrics.get('threads')} threads",
    }


def torch_worker(cfg: dict) -> dict:
    """``torch_record.py`` in a child process; its ``--json``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        command = [sys.executable, str(TORCH_SCRIPT), "--preset", cfg["preset"], "--data", cfg["data"]]
        command += ["--seed", str(cfg["seed"]), "--threads", str(cfg["threads"]), "--json", str(path)]
        command += ["--epochs", str(cfg["epochs"])] if cfg["epochs"] is not None else []
        command += ["--augment-threads", str(cfg["torch_augment_threads"])] if cfg.get("torch_augment_threads") else []
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit((proc.stderr.strip().splitlines() or [f"status {proc.returncode}"])[-1])
        run = json.loads(path.read_text())
    return {**run, "n_dev": run["dev_size"]}


def warmup_worker(cfg: dict) -> dict:
    """One epoch of the recipe on 512 rows: numba compiles (or loads) its kernels here, untimed."""
    from fastnn import load_dataset, train

    from torch_record import recipe

    config, _ = recipe(cfg["preset"], {"epochs": 1, "seed": cfg["seed"]})
    data = load_dataset(cfg["data"], dev_size=0)
    t0 = time.perf_counter()
    train(data.X_train[:512], data.y_train[:512], config)
    return {"seconds": time.perf_counter() - t0}


WORKERS = {"fastnn": fastnn_worker, "torch": torch_worker, "warmup": warmup_worker}


def spawn(kind: str, cfg: dict) -> dict:
    """Run the worker ``kind`` in a fresh process; its JSON result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--worker-config", json.dumps(cfg)]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": tail[-1] if tail else f"exit code {proc.returncode}"}
    return json.loads(lines[-1])


# --- the report -----------------------------------------------------------------------


def reached(rows: list, key: str, target: float):
    """``(epoch, training seconds)`` of the first epoch whose ``key`` accuracy is >= ``target``, else None."""
    for r in rows:
        if r.get(key) is not None and r[key] >= target:
            return r["epoch"], r["train_seconds"]
    return None


def spread(values: list) -> dict | None:
    return (
        {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
        if values
        else None
    )


def summarise(pairs: list, target: float) -> dict:
    """Each pair's ratios fastnn / PyTorch, and their medians."""
    to_target, total = [], []
    for p in pairs:
        f, t = p.get("fastnn"), p.get("torch")
        if not f or not t or "error" in f or "error" in t:
            continue
        if f["test_target"] and t["test_target"]:
            p["ratio_to_target"] = f["test_target"][1] / t["test_target"][1]
            to_target.append(p["ratio_to_target"])
        if len(f["epochs"]) == len(t["epochs"]):
            p["ratio_total"] = f["train_seconds"] / t["train_seconds"]
            total.append(p["ratio_total"])
    return {"ratio_to_target": spread(to_target), "ratio_total": spread(total), "pairs": len(pairs)}


def _target_cell(hit) -> str:
    return f"epoch {hit[0]} ({hit[1]:.1f} s)" if hit else "not reached"


def markdown(runs: dict, summary: dict, args, epochs: int) -> str:
    pct = f"{100 * args.target:.2f}%"
    lines = [
        f"**--preset {args.preset}** on {args.data}, {epochs} epochs, {args.threads} threads; "
        f"target {pct} (seconds: training epochs only, cumulative)",
        "",
        f"| implementation | round | seed | train s | s/epoch | final test | final dev | test >= {pct} | dev >= {pct} |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, rs in runs.items():
        for r in rs:
            if "error" in r:
                lines.append(f"| {LABELS[name]} | {r['round']} | {r['seed']} | failed: {r['error']} ||||||")
                continue
            secs = sorted(e["seconds"] for e in r["epochs"])
            dev = f"{r['dev_accuracy']:.2%}" if r.get("dev_accuracy") is not None else "-"
            lines.append(
                f"| {LABELS[name]} | {r['round']} | {r['seed']} | {r['train_seconds']:.1f} | "
                f"{secs[len(secs) // 2]:.2f} | {r['test_accuracy']:.2%} | {dev} | "
                f"{_target_cell(r['test_target'])} | {_target_cell(r['dev_target'])} |"
            )
    lines.append("")
    for key, what in (
        ("ratio_to_target", f"time to {pct} test accuracy (pairs where both reached it)"),
        ("ratio_total", f"total training time of the same {epochs} epochs"),
    ):
        s = summary[key]
        if s:
            lines.append(
                f"* fastnn / PyTorch, {what}: **{s['median']:.2f}x** "
                f"(min {s['min']:.2f}, max {s['max']:.2f}; {s['n']} of {summary['pairs']} pairs)"
            )
        else:
            lines.append(f"* fastnn / PyTorch, {what}: no pair to compare")
    return "\n".join(lines)


def load_average() -> list:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="record", help="fastnn's named recipe (default record)")
    p.add_argument("--data", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--rounds", type=int, default=2, help="rounds over the seeds (default 2)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each trained every round (default 0)")
    p.add_argument("--target", type=float, default=0.995, help="target accuracy (default 0.995)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (quick runs)")
    p.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    p.add_argument(
        "--torch-augment-threads",
        type=int,
        default=0,
        help="PyTorch's threads for the distortions alone (torch_record.py --augment-threads; default: --threads)",
    )
    p.add_argument("--only", default="fastnn,torch", help="comma-separated subset of fastnn,torch")
    p.add_argument("--no-rotate", dest="rotate", action="store_false", help="fastnn first in every pair")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.rounds < 1 or not args.seeds or (args.epochs is not None and args.epochs < 1):
        p.error("--rounds and --epochs must be >= 1, and --seeds name at least one seed")
    if set(args.only) - set(IMPLEMENTATIONS) or not args.only:
        p.error(f"--only takes a subset of {','.join(IMPLEMENTATIONS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(HERE))
        print(json.dumps(WORKERS[args.worker](json.loads(args.worker_config))))
        return 0
    from fastnn.errors import FastnnError

    from torch_record import recipe

    try:
        config, dev_size = recipe(args.preset, {"epochs": args.epochs})
    except FastnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = [n for n in IMPLEMENTATIONS if n in args.only]
    base = {"preset": args.preset, "data": args.data, "epochs": args.epochs, "threads": args.threads}
    base["torch_augment_threads"] = args.torch_augment_threads
    load_start = load_average()
    print(f"load {load_start}; {config.epochs} epochs of --preset {args.preset} per run", file=sys.stderr)
    if "fastnn" in names:
        warm = spawn("warmup", {**base, "seed": args.seeds[0]})
        if "error" in warm:
            print(f"error: the fastnn warm-up failed: {warm['error']}", file=sys.stderr)
            return 1
        print(f"warm-up (numba's kernels) {warm['seconds']:.1f} s", file=sys.stderr)
    runs = {name: [] for name in names}
    pairs = []
    for rnd in range(1, args.rounds + 1):
        for seed in args.seeds:
            order = names if (not args.rotate or len(pairs) % 2 == 0) else names[::-1]
            pair = {"round": rnd, "seed": seed}
            for name in order:
                t0 = time.perf_counter()
                res = {**spawn(name, {**base, "seed": seed}), "round": rnd, "seed": seed, "load": load_average()}
                res["process_seconds"] = time.perf_counter() - t0
                if "error" in res:
                    print(f"round {rnd} seed {seed}: {LABELS[name]} FAILED: {res['error']}", file=sys.stderr)
                else:
                    res["test_target"] = reached(res["epochs"], "test_accuracy", args.target)
                    res["dev_target"] = reached(res["epochs"], "dev_accuracy", args.target)
                    print(
                        f"round {rnd} seed {seed}: {LABELS[name]:22} {res['train_seconds']:7.1f} s, "
                        f"test {res['test_accuracy']:.4f}, test target {_target_cell(res['test_target'])}",
                        file=sys.stderr,
                    )
                runs[name].append(res)
                pair[name] = res
            pairs.append(pair)
    summary = summarise(pairs, args.target)
    table = markdown(runs, summary, args, config.epochs)
    print(table)
    if args.json:
        report = {
            "args": {k: v for k, v in vars(args).items() if k not in ("worker", "worker_config", "json")},
            "recipe": asdict(config),
            "dev_size": dev_size,
            "load_start": load_start,
            "load_end": load_average(),
            "summary": summary,
            "pairs": [{k: v for k, v in p.items() if k not in IMPLEMENTATIONS} for p in pairs],  # runs: below
            "runs": runs,
            "markdown": table,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
