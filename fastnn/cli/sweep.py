"""``fastnn sweep``: train a grid of configs times seeds on a Dask cluster and tabulate the results.

Also ``python scripts/sweep.py``.  Needs Dask distributed (``pip install
'fastnn[sweep]'``).  The grid is validated before any cluster starts; a trial
that fails is recorded with its error and the sweep goes on.  See
:mod:`fastnn.sweeps` for how the work is spread over the workers.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FastnnError
from ._options import (add_config_options, add_data_options, add_output_options, data_spec, given_config,
                       out_folder)

HELP = "train a grid of configs x seeds on a Dask cluster and write a results table"


#: TrainConfig fields a sweep does not take (log_every only adds history rows).
_SKIP = ("log_every",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn sweep``."""
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="a training option and its values, e.g. --grid hidden=128,256,800 --grid lr=0.1,0.5 "
                        "(repeatable; any option below, or backend)")
    p.add_argument("--seeds", type=int, default=1,
                   help="trials per grid point, with seeds --seed, --seed+1, ... (default 1)")
    add_data_options(p, data_note=" (a path must exist on every worker, or use --scatter)")
    fixed = p.add_argument_group("fixed training options (TrainConfig's defaults unless given)")
    add_config_options(fixed, skip=_SKIP, helps={"seed": "the first seed"})
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
    add_output_options(p, default_out="runs/sweep", what="the results")


def run(args: argparse.Namespace) -> None:
    """``fastnn sweep``: validate, run the trials, write the results, print the summary table."""
    from .. import sweeps
    from ..backends import DEFAULT_BACKEND
    from ..config import DEV_SIZE

    if not args.grid:
        raise FastnnError("give at least one --grid FIELD=V1,V2,... (e.g. --grid hidden=128,256)")
    grid = sweeps.parse_grid(args.grid)
    fixed = given_config(args, skip=_SKIP)
    if args.scheduler is None and not args.quiet and "backend" not in grid \
            and fixed.get("backend", DEFAULT_BACKEND) == "numba":
        sweeps.check_grid(grid, fixed, args.seeds)  # a bad grid fails before the compile note
        from ..backends._numba_setup import kernels_cached

        if not kernels_cached():
            print("fastnn: the workers compile the numba kernels (first run only, ~20-60 s)",
                  file=sys.stderr, flush=True)
    out = out_folder(args)
    table = sweeps.sweep(grid, data_spec(args), args.scheduler, seeds=args.seeds, fixed=fixed,
                         dev_size=DEV_SIZE if args.dev_size is None else args.dev_size,
                         threads_per_trial=args.threads_per_trial,
                         n_workers=args.workers, out=out, scatter=args.scatter, cache=args.cache,
                         source=args.source, plots=not args.no_plots, progress=not args.quiet,
                         timeout=args.timeout)
    failed = table["error"].notna()
    if not args.quiet:
        attrs = table.attrs
        print(f"fastnn sweep: {len(table)} trials ({int(failed.sum())} failed) on {attrs['workers']} "
              f"workers in {attrs['wall_seconds']:.1f} s")
        print(sweeps.format_summary(table))
        if attrs["best"] is not None:
            print(f"  best: trial {attrs['best']} (by dev accuracy), report in {out}/best/")
        print(f"  results: {out}/sweep.csv, {out}/sweep.json")
    if failed.all():
        raise FastnnError(f"all {len(table)} trials failed; the first: {table['error'].iloc[0]}")
