"""A sweep's results: the summary table, the files written into ``--out``, the best trial's report."""

from __future__ import annotations

import math
from pathlib import Path

from .grid import FIELDS, RESULT_COLUMNS


def varied(table) -> list[str]:
    """The grid fields of a sweep's table (from ``table.attrs``), seed last if varied."""
    return list(table.attrs.get("grid", {}))


def summarize(table):
    """Mean, spread and count per grid point over seeds: a DataFrame, one row per point."""
    import pandas as pd

    keys = [k for k in varied(table) if k != "seed"]
    metrics = [m for m in ("dev_accuracy", "test_accuracy", "test_f1", "train_seconds") if table[m].notna().any()]
    if not keys:
        keys = ["seed"]
    ok = table[table["error"].isna()]
    rows = []
    for point, group in table.groupby(keys, sort=False, dropna=False):
        point = point if isinstance(point, tuple) else (point,)
        good = ok.loc[ok.index.intersection(group.index)]
        row = dict(zip(keys, point))
        for m in metrics:
            values = good[m].dropna().astype(float)
            row[f"{m}_mean"] = values.mean() if len(values) else float("nan")
            if m.endswith("accuracy"):
                row[f"{m}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
        row["trials"] = len(group)
        row["failed"] = int(group["error"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(table) -> str:
    """The summary table as text: one line per grid point (mean ± std over seeds), the best one marked."""
    summary = summarize(table)
    keys = [k for k in varied(table) if k != "seed"] or ["seed"]
    best = table.attrs.get("best")
    best_point = None if best is None else tuple(table.loc[table["trial"] == best, keys].iloc[0])

    def number(value, digits):
        return "-" if value is None or value != value else f"{value:.{digits}f}"

    def spread(row, metric):
        text = number(row.get(f"{metric}_mean"), 4)
        std = row.get(f"{metric}_std")
        return text if text == "-" or std is None or std != std else f"{text} ± {std:.4f}"

    headers = [*keys, "dev accuracy", "test accuracy", "test F1", "train s", "trials", "failed", ""]
    body = []
    for _, row in summary.iterrows():
        point = tuple(row[k] for k in keys)
        body.append(
            [
                *(f"{v:g}" if isinstance(v, float) else str(v) for v in point),
                spread(row, "dev_accuracy"),
                spread(row, "test_accuracy"),
                number(row.get("test_f1_mean"), 4),
                number(row.get("train_seconds_mean"), 1),
                str(int(row["trials"])),
                str(int(row["failed"])),
                "best" if point == best_point else "",
            ]
        )
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [headers, *body])


# --------------------------------------------------------------------------
# The table, the best trial, the files' contents
# --------------------------------------------------------------------------


def json_value(v):
    """``v`` as plain JSON: NumPy scalars unwrapped, NaN and missing values as None."""
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return json_value(v.item())
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return v


def table_of(rows: dict, plan):
    """The sweep's table: one row per finished trial (``rows``: trial -> row), in trial order."""
    import pandas as pd

    columns = ["trial", *plan.trials()[0], "dev_size", *RESULT_COLUMNS]
    table = pd.DataFrame([rows[i] for i in sorted(rows)], columns=columns)
    for column in ("epochs_run", "threads"):
        table[column] = table[column].astype("Int64")  # whole numbers, missing for failed trials
    return table


def best_trial(rows) -> int | None:
    """The trial with the best dev accuracy (test accuracy without a dev split; the first of equals);
    None if every trial failed."""
    ok = [r for r in rows if r["error"] is None]
    if not ok:
        return None
    key = "dev_accuracy" if any(r["dev_accuracy"] is not None for r in ok) else "test_accuracy"
    scored = [r for r in ok if r[key] is not None] or ok
    return max(scored, key=lambda r: (r[key] or 0.0, -r["trial"]))["trial"]


def sweep_document(table, files: dict) -> dict:
    """What ``sweep.json`` holds: the sweep's settings, its files and every trial's row."""
    records = [
        {k: json_value(v) for k, v in row.items()}
        for row in table.astype(object).where(table.notna(), None).to_dict("records")
    ]
    attrs = table.attrs
    return {
        "data": attrs.get("data"),
        "grid": attrs.get("grid"),
        "fixed": attrs.get("fixed"),
        "seeds": attrs.get("seeds"),
        "dev_size": attrs.get("dev_size"),
        "scheduler": attrs.get("scheduler"),
        "workers": attrs.get("workers"),
        "wall_seconds": attrs.get("wall_seconds"),
        "best_trial": attrs.get("best"),
        "files": files,
        "trials": records,
    }


def write_best_report(folder: Path, row: dict, network, history: dict, plan, plots: bool) -> None:
    """The best trial's report folder, as ``fastnn train`` writes it (:func:`fastnn.report.write_report`).

    The network came back from its worker (or from the sweep's folder); the data
    are the plan's, loaded here (once per process), split as the trial split them.
    """
    from ..config import TrainConfig
    from ..report import run_result, splits_of, write_report
    from ..training import History
    from .worker import _base_dataset, _split_dataset

    data = _split_dataset(_base_dataset(plan.data_ref), row["dev_size"], row["seed"])
    config = TrainConfig(**{k: json_value(row[k]) for k in FIELDS if k in row})
    environment = {"threads": row["threads"], "worker": row["worker"], "sweep_trial": row["trial"]}
    run = run_result(
        data, config, network, History(**history), train_seconds=row["train_seconds"], environment=environment
    )
    write_report(folder, run, splits_of(data), plots=plots)


def plot_sweep(table, path) -> Path:
    """Accuracy against each varied parameter: mean over seeds, min-max bars, one line per other point."""
    import numpy as np
    from matplotlib.figure import Figure

    from ..plots import _save

    grid = table.attrs.get("grid", {})
    params = [k for k in grid if k != "seed"] or list(grid)
    metric = "test_accuracy" if table["test_accuracy"].notna().any() else "dev_accuracy"
    ok = table[table["error"].isna() & table[metric].notna()]
    fig = Figure(figsize=(4.2 * len(params), 3.6), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, param in zip(axes, params):
        values = grid[param]
        others = [k for k in params if k != param]
        groups = ok.groupby(others, sort=False) if others else [((), ok)]
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            xs, means, lows, highs = [], [], [], []
            for x, value in enumerate(values):
                acc = group.loc[group[param] == value, metric].astype(float)
                if len(acc):
                    xs.append(x)
                    means.append(acc.mean())
                    lows.append(acc.mean() - acc.min())
                    highs.append(acc.max() - acc.mean())
            label = ", ".join(f"{k}={v}" for k, v in zip(others, key)) or None
            ax.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, label=label)
        ax.set_xticks(np.arange(len(values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in values])
        ax.set_xlabel(param)
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        if others and len(groups) <= 12:
            ax.legend(fontsize=7)
    seeds = table.attrs.get("seeds", 1)
    fig.suptitle(
        f"{table.attrs.get('data', '')}: {metric.replace('_', ' ')}"
        + (f", mean and min-max over {seeds} seeds" if seeds > 1 else ""),
        fontsize=10,
    )
    return _save(fig, path)
