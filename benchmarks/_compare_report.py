"""Report side of ``compare.py``: from the workers' results to the summary, the markdown
table, ``compare.png`` and the FLOP count (no measuring here)."""

from __future__ import annotations

import os
import statistics
import tempfile
from itertools import pairwise
from pathlib import Path

from _common import shape

LABELS = {"numpy": "fastnn-numpy", "numba": "fastnn-numba", "torch": "PyTorch CPU", "sklearn": "scikit-learn MLP"}

#: How :func:`training_flops` counts, for the JSON report.
FLOPS_FORMULA = "6*n*sum(fan_in*fan_out over layers) - 2*n*d*h1 (the first layer counted dense)"


def training_flops(n: int, sizes) -> int:
    """FLOPs of one training epoch over ``n`` samples of a network of layer ``sizes``
    ``(d, h1, ..., c)``, a multiply-add counted as 2; elementwise work left out.

    Each layer of ``fan_in x fan_out`` weights costs ``2 n fan_in fan_out`` in the
    forward product, as much for its weight gradient, and as much again for the
    gradient passed down to the layer below, which the first layer has none of:
    ``6 n sum(fan_in fan_out) - 2 n d h1`` (one hidden layer: ``4ndh + 6nhc``).  The
    first layer is counted as dense, ``d x h1`` multiply-adds per sample, although
    fastnn-numba's sparse path does only the nonzero pixels' share of them: its
    rate below is a dense-equivalent one.
    """
    sizes = tuple(sizes)
    products = sum(a * b for a, b in pairwise(sizes))
    return 6 * n * products - 2 * n * sizes[0] * sizes[1]


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
        row = {
            "implementation": LABELS[name],
            "rounds_ok": len(ok),
            "epoch_s": epoch_s,
            "epoch_s_per_round": [steady(r) for r in ok],
            "first_epoch_s": statistics.median(r["epoch_seconds"][0] for r in ok),
            "samples_per_s": n / epoch_s,
            "gflops": flops / epoch_s / 1e9,
            "percent_of_peak": 100 * flops / epoch_s / 1e9 / peak,
            "test_accuracy": statistics.median(r["test_accuracy"] for r in ok),
            "final_train_loss": statistics.median(r["train_loss"][-1] for r in ok),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
            "extra_mb": max((r["extra_mb"] for r in ok if r.get("extra_mb") is not None), default=None),
            "vs_numba": ratio_stats(runs, name, "numba"),
            "vs_numpy": ratio_stats(runs, name, "numpy"),
        }
        if target is not None and ok[0].get("epoch_accuracy"):
            hits = [t for t in (time_to_accuracy(r, target) for r in ok) if t]
            row["time_to_accuracy"] = {
                "target": target,
                "reached_in_rounds": len(hits),
                "rounds": len(ok),
                "seconds": statistics.median(t[0] for t in hits) if hits else None,
                "epoch": statistics.median(t[1] for t in hits) if hits else None,
            }
        summary[name] = row
    return summary


def _ratio(r: dict | None) -> str:
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})" if r else "-"


def markdown(summary: dict, cfg, meta: dict) -> str:
    e = cfg.epochs
    later = f"median of epochs 2..{e}" if e > 1 else "epoch 1 only"
    lines = [
        f"Config: {shape(cfg.hidden)} {cfg.activation}/softmax on {cfg.data} ({meta['n_train']} train / {meta['n_test']} test), "
        f"{cfg.optimizer}, lr {cfg.lr} ({cfg.schedule}), weight decay {cfg.weight_decay}, batch "
        f"{cfg.batch_size}, {e} epochs; {meta['flops'] / 1e9:.1f} GFLOP per epoch (the dense products, the "
        f"first layer counted dense: fastnn-numba skips zero pixels, so its dense-equivalent rate can pass "
        f"the matmul peak).",
        f"Method: {cfg.rounds} rounds, each implementation in a fresh process per round, order "
        f"{'rotated' if cfg.rotate else 'fixed'}; s/epoch = median over rounds of each run's {later}; "
        f"ratios = median (min-max) over rounds of the within-round ratio.",
        f"Peak float32 matmul (2048x2048, best of 5): {meta['peak_start']:.1f} GFLOP/s at start, "
        f"{meta['peak_end']:.1f} at end.  Load average (1/5/15 min): {meta['load_start']} at start, "
        f"{meta['load_end']} at end.",
        "",
        "| implementation | 1st epoch (s) | s/epoch | s/epoch per round | samples/s | GFLOP/s | % of peak "
        "| test acc | time vs fastnn-numba | time vs fastnn-numpy | peak RSS MB (+training) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary.values():
        if "error" in row:
            lines.append(f"| {row['implementation']} | failed: {row['error']} |" + " |" * 9)
            continue
        extra = f" (+{row['extra_mb']:.0f})" if row["extra_mb"] is not None else ""
        lines.append(
            f"| {row['implementation']} | {row['first_epoch_s']:.3f} | {row['epoch_s']:.3f} "
            f"| {', '.join(f'{s:.3f}' for s in row['epoch_s_per_round'])} | {row['samples_per_s']:,.0f} "
            f"| {row['gflops']:.1f} | {row['percent_of_peak']:.1f}% | {100 * row['test_accuracy']:.2f}% "
            f"| {_ratio(row['vs_numba'])} | {_ratio(row['vs_numpy'])} | {row['peak_rss_mb']:.0f}{extra} |"
        )
    tta = {k: r["time_to_accuracy"] for k, r in summary.items() if "time_to_accuracy" in r}
    if tta:
        lines += [
            "",
            f"Time to {100 * cfg.target_accuracy:.2f}% test accuracy (training seconds incl. "
            "epoch 1, evaluation untimed; median over the rounds that reached it):",
            "",
            "| implementation | seconds | epoch | reached in |",
            "|---|---:|---:|---:|",
        ]
        for k, t in tta.items():
            secs = f"{t['seconds']:.2f}" if t["seconds"] is not None else f"not reached in {e} epochs"
            ep = f"{t['epoch']:g}" if t["epoch"] is not None else "-"
            lines.append(f"| {LABELS[k]} | {secs} | {ep} | {t['reached_in_rounds']}/{t['rounds']} rounds |")
    for name, reason in meta["skipped"].items():
        lines.append(f"\nSkipped {LABELS[name]}: {reason}.")
    m = meta.get("machine") or {}
    if m:
        lines += [
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores; BLAS: {'; '.join(m['blas'])}; numba "
            f"{m['numba']} ({m['numba_threads']} threads); Python {m['python']}, NumPy {m['numpy']}.",
        ]
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
    bars = ax.bar(
        names, values, yerr=[lo, hi], capsize=4, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(rows)]
    )
    ax.bar_label(
        bars, labels=[f"{v:,.0f}k\n{r['epoch_s']:.2f} s" for v, r in zip(values, rows)], fontsize=8, label_type="center"
    )
    ax.set_ylabel("training throughput (thousand samples/s)")
    ax.set_title("Median epoch over rounds (bars: min-max of the rounds)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
