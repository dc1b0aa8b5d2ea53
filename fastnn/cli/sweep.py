"""``fastnn sweep``: train a grid of configs times seeds on a Dask cluster and tabulate the results.

Also ``python scripts/sweep.py``.  Needs Dask distributed (``pip install
'fastnn[sweep]'``).  The grid is validated before any cluster starts; a trial
that fails is recorded with its error and the sweep goes on.  See
:mod:`fastnn.sweeps` for how the work is spread over the workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..errors import FastnnError

HELP = "train a grid of configs x seeds on a Dask cluster and write a results table"


def _fields():
    from ..config import TrainConfig

    return [f for f in dataclasses.fields(TrainConfig) if f.name != "log_every"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn sweep``."""
    p.add_argument("--data", default="mnist",
                   help="mnist, fashion-mnist, a Kaggle-style train.csv, or a folder of IDX files "
                        "(a path must exist on every worker, or use --scatter)")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="a training option and its values, e.g. --grid hidden=128,256,800 --grid lr=0.1,0.5 "
                        "(repeatable; any option below, or backend)")
    p.add_argument("--seeds", type=int, default=1,
                   help="trials per grid point, with seeds --seed, --seed+1, ... (default 1)")
    from ..config import DEV_SIZE

    fixed = p.add_argument_group("fixed training options (TrainConfig's defaults unless given)")
    for f in _fields():  # the same options as fastnn train, from the same source
        what = "the first seed" if f.name == "seed" else f.metadata["help"]
        fixed.add_argument(f"--{f.name.replace('_', '-')}", type=f.metadata["type"], default=None,
                           dest=f.name, help=f"{what} (default {f.default})")
    fixed.add_argument("--dev-size", default=DEV_SIZE,
                       help=f"rows held out for the dev set: a count, a fraction < 1, or auto (default "
                            f"{DEV_SIZE}: a tenth of the rows, at most 5000)")
    fixed.add_argument("--cache", default=None, help="dataset cache folder (default: $FASTNN_DATA_DIR or the user cache)")
    fixed.add_argument("--source", default=None, help="a folder holding the dataset's IDX files")
    dask = p.add_argument_group("cluster")
    dask.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster "
                           "sized to this machine, shut down at the end)")
    dask.add_argument("--threads-per-trial", type=int, default=None,
                      help="numba threads per trial (default 1 on the local cluster, which then has one "
                           "worker per core; on a running cluster the worker's share of its cores)")
    dask.add_argument("--workers", type=int, default=None,
                      help="worker processes of the local cluster (default cores / --threads-per-trial)")
    dask.add_argument("--scatter", action="store_true",
                      help="load the data here and send it once to every worker (for a path the "
                           "workers cannot read)")
    dask.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--out", default="runs/sweep", help="folder for the results (default %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> None:
    """``fastnn sweep``: validate, run the trials, write the results, print the summary table."""
    from .. import sweeps
    from ..backends import DEFAULT_BACKEND

    if not args.grid:
        raise FastnnError("give at least one --grid FIELD=V1,V2,... (e.g. --grid hidden=128,256)")
    grid = sweeps.parse_grid(args.grid)
    fixed = {f.name: getattr(args, f.name) for f in _fields() if getattr(args, f.name) is not None}
    if args.scheduler is None and not args.quiet and "backend" not in grid \
            and fixed.get("backend", DEFAULT_BACKEND) == "numba":
        sweeps.check_grid(grid, fixed, args.seeds)  # a bad grid fails before the compile note
        from ..backends._numba_setup import kernels_cached

        if not kernels_cached():
            print("fastnn: the workers compile the numba kernels (first run only, ~20-60 s)",
                  file=sys.stderr, flush=True)
    table = sweeps.sweep(grid, args.data, args.scheduler, seeds=args.seeds, fixed=fixed,
                         dev_size=args.dev_size, threads_per_trial=args.threads_per_trial,
                         n_workers=args.workers, out=args.out, scatter=args.scatter, cache=args.cache,
                         source=args.source, plots=not args.no_plots, progress=not args.quiet,
                         timeout=args.timeout)
    failed = table["error"].notna()
    if not args.quiet:
        attrs = table.attrs
        print(f"fastnn sweep: {len(table)} trials ({int(failed.sum())} failed) on {attrs['workers']} "
              f"workers in {attrs['wall_seconds']:.1f} s")
        print(sweeps.format_summary(table))
        if attrs["best"] is not None:
            print(f"  best: trial {attrs['best']} (by dev accuracy), report in {args.out}/best/")
        print(f"  results: {args.out}/sweep.csv, {args.out}/sweep.json")
    if failed.all():
        raise FastnnError(f"all {len(table)} trials failed; the first: {table['error'].iloc[0]}")
