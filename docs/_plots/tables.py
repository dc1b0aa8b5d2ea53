"""Plots of the user guide's benchmark tables, read from the pages themselves.

The figures are the tables' own numbers (a table refreshed on its page refreshes its
plot): nothing here holds a measurement.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt

GUIDE = Path(__file__).resolve().parent.parent / "guide"


def table_after(page: str, caption: str) -> list[list[str]]:
    """The rows (cells, markup stripped) of the first Markdown table after the line starting with ``caption``."""
    lines = (GUIDE / page).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(caption))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            cells = [re.sub(r"[*`]", "", c).strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):  # the header's rule
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def number(cell: str) -> float:
    return float(re.search(r"[\d.]+", cell.replace(",", "")).group())


def seconds_per_epoch(page: str, captions: dict[str, str], column: int = 1, unit: str = "s/epoch"):
    """One bar chart per table: each implementation's ``column`` (seconds per epoch by default)."""
    fig, axes = plt.subplots(1, len(captions), figsize=(4.6 * len(captions), 2.9), layout="constrained", squeeze=False)
    for ax, (title, caption) in zip(axes[0], captions.items()):
        rows = table_after(page, caption)
        names = [r[0].replace(" MLPClassifier", "").replace(" CPU", "") for r in rows]
        values = [number(r[column]) for r in rows]
        colours = ["tab:orange" if "numba" in n else "tab:grey" for n in names]
        ax.barh(names[::-1], values[::-1], color=colours[::-1])
        for y, v in enumerate(values[::-1]):
            ax.text(v, y, f" {v:g}", va="center", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit)
        ax.set_xlim(0, max(values) * 1.25)
    return fig
