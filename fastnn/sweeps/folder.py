"""A sweep's output folder while it runs: nothing a finished trial produced is lost to an interruption.

Files, in the order they are written (each atomically):

* ``sweep-plan.json``: the :class:`~fastnn.sweeps.plan.Plan`, before the first trial;
* ``.best-so-far/trial-N.npz``: the network and history of the best trial so far
  (by dev accuracy), saved before that trial's row, so the row never names a
  network that is not there;
* ``sweep.csv``: the finished trials' rows in trial order, rewritten as each
  trial finishes;
* at the end ``best/`` (the best trial's report), ``sweep.png``, ``sweep.csv``
  and ``sweep.json``, last: its presence means the sweep is complete, and
  ``.best-so-far/`` is then removed.

An interrupted sweep (Ctrl-C, ``--timeout``, a lost client) therefore keeps
every finished row and the best network; :meth:`SweepFolder.open` reads them
back for ``fastnn sweep --resume DIR``, which runs only the missing trials.
Without a folder (``fastnn.sweep(..., out=None)``) the same bookkeeping happens
in memory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .._atomic import atomic_write_text, writable_folder
from ..errors import FastnnError, command_line_running
from .grid import RESULT_COLUMNS, _convert
from .plan import Plan
from .results import best_trial, sweep_document, table_of

PLAN = "sweep-plan.json"
CSV = "sweep.csv"
JSON = "sweep.json"
PLOT = "sweep.png"
BEST = "best"
PENDING = ".best-so-far"

_INTEGER_COLUMNS = ("epochs_run", "threads")
_TEXT_COLUMNS = ("worker", "error")


def resume_command(path) -> str:
    """How the user resumes the sweep in ``path``, in the language they are using."""
    if command_line_running():
        return f"fastnn sweep --resume {path}"
    return f"fastnn.sweeps.resume({str(path)!r})"


class SweepFolder:
    """The finished trials of one sweep, kept in ``path`` (or, with ``path=None``, in memory)."""

    def __init__(self, path: Path | None, plan: Plan, rows: dict | None = None):
        self.path = path
        self.plan = plan
        self.rows = dict(rows or {})  # trial index -> row, the finished trials
        self._best: tuple | None = None  # (trial, network, history) of the best finished trial

    # ---- starting and reopening -----------------------------------------------------------

    @classmethod
    def start(cls, out, plan: Plan) -> SweepFolder:
        """A new sweep in the folder ``out`` (None: in memory only).

        Refuses a folder holding an unfinished sweep with finished trials (they
        would be lost: resume it instead); a finished sweep's files are replaced.
        """
        if out is None:
            return cls(None, plan)
        path = writable_folder(out)
        if (path / PLAN).is_file() and not (path / JSON).is_file() and (path / CSV).is_file():
            done = len(_read_rows(path / CSV))
            if done:
                raise FastnnError(
                    f"{path} holds an unfinished sweep with {done} finished trials; "
                    f"resume it ({resume_command(path)}) or choose another output folder"
                )
        try:
            finished = (path / JSON).is_file()
            (path / JSON).unlink(missing_ok=True)  # first: the folder must not look complete
            (path / PLOT).unlink(missing_ok=True)
            shutil.rmtree(path / PENDING, ignore_errors=True)
            if finished:
                shutil.rmtree(path / BEST, ignore_errors=True)
            atomic_write_text(path / PLAN, json.dumps(plan.to_json(), indent=2) + "\n")
        except OSError as exc:
            raise FastnnError(f"cannot write the sweep into {path}: {exc.strerror or exc}") from None
        folder = cls(path, plan)
        folder._write_rows(path, {})
        return folder

    @classmethod
    def open(cls, path) -> SweepFolder:
        """The sweep saved in ``path``: its plan, its finished trials and its best network so far."""
        path = Path(path)
        if not (path / PLAN).is_file():
            raise FastnnError(
                f"{path} holds no sweep to resume (no {PLAN}; a sweep started with this fastnn writes one)"
            )
        try:
            document = json.loads((path / PLAN).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FastnnError(f"{path / PLAN}: cannot read the sweep plan ({exc})") from None
        plan = Plan.from_json(document, str(path / PLAN))
        folder = cls(path, plan, _checked_rows(path / CSV, plan))
        folder._load_best(path)
        return folder

    def missing(self) -> list[int]:
        """The trials still to run, in order.  The best finished trial whose network was not kept
        is run again (same config, same seed: the same network); its row stays until then."""
        todo = [i for i in range(len(self.plan.trials())) if i not in self.rows]
        if self.complete:
            return todo  # best/ was written: its network is no longer needed
        best = best_trial(self.rows.values())
        if best is not None and (self._best is None or self._best[0] != best):
            todo = sorted([*todo, best])
        return todo

    @property
    def complete(self) -> bool:
        """Whether the sweep's results were all written (``sweep.json`` exists)."""
        return self.path is not None and (self.path / JSON).is_file()

    # ---- while the sweep runs ---------------------------------------------------------------

    def record(self, result: dict) -> None:
        """Keep one finished trial: its network if it is the best so far, then its row.

        ``rows`` counts the trial only once its row is written, so an interruption
        part way (Ctrl-C lands anywhere) never claims a row the file does not hold.
        """
        row = result["row"]
        rows = {**self.rows, row["trial"]: row}
        best = self._best
        if best_trial(rows.values()) == row["trial"] and result.get("network") is not None:
            best = (row["trial"], result["network"], result["history"])
            if self.path is not None:
                self._save_best(self.path, best)
        if self.path is not None:
            self._write_rows(self.path, rows)
        self.rows, self._best = rows, best
        if self.path is not None and best is not None:
            for old in (self.path / PENDING).glob("trial-*.npz"):
                if old.name != _best_file(best[0]):
                    old.unlink(missing_ok=True)

    def best_network(self):
        """``(trial, network, history dict)`` of the best finished trial, or None."""
        return self._best

    # ---- the end -----------------------------------------------------------------------------

    def finish(self, table, *, plots: bool) -> None:
        """Write the complete results: ``best/``, ``sweep.png``, ``sweep.csv``, then ``sweep.json``."""
        from .results import plot_sweep, write_best_report

        if self.path is None:
            return
        files = {"csv": CSV, "json": JSON, "plan": PLAN}
        best = table.attrs.get("best")
        if best is not None and self._best is not None:  # the table's best trial is the one kept
            trial, network, history = self._best
            write_best_report(self.path / BEST, self.rows[trial], network, history, self.plan, plots)
            files["best"] = f"{BEST}/metrics.json"
        if plots and table["error"].isna().any():
            plot_sweep(table, self.path / PLOT)
            files["plot"] = PLOT
        try:
            atomic_write_text(self.path / CSV, table.to_csv(index=False))
            atomic_write_text(self.path / JSON, json.dumps(sweep_document(table, files), indent=2) + "\n")
        except OSError as exc:
            raise FastnnError(f"cannot write the sweep results into {self.path}: {exc.strerror or exc}") from None
        shutil.rmtree(self.path / PENDING, ignore_errors=True)

    # ---- files ---------------------------------------------------------------------------------

    def _write_rows(self, path: Path, rows: dict) -> None:
        try:
            atomic_write_text(path / CSV, table_of(rows, self.plan).to_csv(index=False))
        except OSError as exc:
            raise FastnnError(f"cannot write {path / CSV}: {exc.strerror or exc}") from None

    def _save_best(self, path: Path, best: tuple) -> None:
        from ..modelfile import save_network

        trial, network, history = best
        folder = path / PENDING
        folder.mkdir(exist_ok=True)
        save_network(network, folder / _best_file(trial), {"sweep_trial": trial, "history": history})

    def _load_best(self, path: Path) -> None:
        from ..modelfile import load_network

        best = best_trial(self.rows.values())
        file = path / PENDING / _best_file(best) if best is not None else None
        if file is None or not file.is_file():
            return
        try:
            network, meta = load_network(file)
        except FastnnError:
            return  # damaged: missing() runs that trial again
        self._best = (best, network, meta.get("history"))


def _best_file(trial: int) -> str:
    return f"trial-{trial}.npz"


def _read_rows(path: Path) -> list[dict]:
    """The rows of a ``sweep.csv`` as text, empty cells as None (an absent file has none)."""
    import csv

    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FastnnError(f"{path}: cannot read the finished trials ({exc})") from None


def _checked_rows(path: Path, plan: Plan) -> dict:
    """The finished trials in ``path``, each checked against the plan's trial of that number.

    Read back exactly as written: Python writes a float as the shortest text
    that parses back to the same float.
    """
    from ..data import parse_dev_size

    trials = plan.trials()
    rows = {}
    for line, raw in enumerate(_read_rows(path), start=2):
        try:
            index = int(raw["trial"])
            config = trials[index]
            row = {
                "trial": index,
                **{name: _convert(name, raw[name]) for name in config},
                "dev_size": parse_dev_size(raw["dev_size"]),
            }
            for column in RESULT_COLUMNS:
                text = raw[column]
                kind = int if column in _INTEGER_COLUMNS else str if column in _TEXT_COLUMNS else float
                row[column] = None if text is None else kind(text)
        except (KeyError, IndexError, TypeError, ValueError, FastnnError):
            raise FastnnError(f"{path}, line {line}: not a row of the sweep in {PLAN}") from None
        if {k: row[k] for k in config} != config or row["dev_size"] != plan.dev_size:
            raise FastnnError(f"{path}, line {line}: trial {index}'s settings differ from those in {PLAN}")
        rows[index] = row
    return rows
