"""``fastnn sweep``: train a grid of configs times seeds on a Dask cluster and tabulate the results.

Also ``python scripts/sweep.py``.  Needs Dask distributed (``pip install
'fastnn[sweep]'``).  The grid, and the data against every trial, are checked
before any cluster starts; a trial that fails is recorded with its error and the
sweep goes on.  Each finished trial's row is in ``OUT/sweep.csv`` at once, so an
interrupted sweep keeps them, and ``fastnn sweep --resume OUT`` runs only the
missing trials.  See :mod:`fastnn.sweeps` for how the work is spread over the
workers.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FastnnError
from ._options import add_config_options, add_data_options, add_output_options, data_spec, given_config, out_folder

HELP = "train a grid of configs x seeds on a Dask cluster and write a results table"

#: TrainConfig fields a sweep does not take (log_every only adds history rows).
_SKIP = ("log_every",)
#: What --resume takes from the saved sweep, so cannot be given with it.
_PLANNED = ("data", "dev_size", "cache", "source", "seeds", "out")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastnn sweep``."""
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        help="a training option and its values, e.g. --grid hidden=128,256,100-100 --grid "
        "lr=0.1,0.5 (repeatable; any option below, or backend; a network of several "
        "hidden layers is one value, its sizes joined by dashes)",
    )
    p.add_argument(
        "--seeds", type=int, default=None, help="trials per grid point, with seeds --seed, --seed+1, ... (default 1)"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="finish the interrupted sweep in DIR: run only its missing trials, with the "
        "settings it was started with (only the cluster options below may be given)",
    )
    add_data_options(p, data_note=" (a path must exist on every worker, or use --scatter)")
    fixed = p.add_argument_group("fixed training options (TrainConfig's defaults unless given)")
    add_config_options(fixed, skip=_SKIP, helps={"seed": "the first seed"})
    dask = p.add_argument_group("cluster")
    dask.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster "
        "sized to this machine, shut down at the end)",
    )
    dask.add_argument(
        "--threads-per-trial",
        type=int,
        default=None,
        help="numba threads per trial (default 1 on the local cluster, which then has one "
        "worker per core; on a running cluster the worker's share of its cores)",
    )
    dask.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the local cluster (default cores / --threads-per-trial)",
    )
    dask.add_argument(
        "--scatter",
        action="store_true",
        help="load the data here and send it once to every worker (for a path the workers cannot read)",
    )
    dask.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up after this many seconds (the finished trials are kept: --resume)",
    )
    add_output_options(p, default_out="runs/sweep", what="the results")


def _planned_options(args: argparse.Namespace) -> list[str]:
    """The options given that a resumed sweep takes from its plan instead."""
    given = [f"--{name.replace('_', '-')}" for name in _PLANNED if getattr(args, name) is not None]
    given += [f"--{name.replace('_', '-')}" for name in given_config(args, skip=_SKIP)]
    return given + (["--grid"] if args.grid else [])


def _compile_note(args: argparse.Namespace, plan) -> None:
    """Say so when the local workers are about to compile the numba kernels (a cold compile cache)."""
    if args.scheduler is not None or args.quiet:
        return
    from ..backends import DEFAULT_BACKEND, get_backend

    backends = plan.grid.get("backend", [plan.fixed.get("backend", DEFAULT_BACKEND)])
    if all(get_backend(name).kernels_cached() for name in backends):
        return
    print("fastnn: the workers compile the numba kernels (first run only, ~20-60 s)", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> None:
    """``fastnn sweep``: validate, run the trials, write the results, print the summary table."""
    from .. import sweeps
    from ..config import DEV_SIZE
    from ..sweeps.folder import SweepFolder

    cluster = dict(
        n_workers=args.workers,
        scatter=args.scatter,
        plots=not args.no_plots,
        progress=not args.quiet,
        timeout=args.timeout,
    )
    if args.resume is not None:
        if _planned_options(args):
            raise FastnnError(
                f"--resume runs the sweep saved in {args.resume} with its own settings; "
                f"drop {', '.join(_planned_options(args))} (only the cluster options, "
                f"--no-plots and --quiet may be given)"
            )
        folder = SweepFolder.open(args.resume)
        _compile_note(args, folder.plan)
        table = sweeps.resume(args.resume, args.scheduler, threads_per_trial=args.threads_per_trial, **cluster)
        out = args.resume
    else:
        if not args.grid:
            raise FastnnError("give at least one --grid FIELD=V1,V2,... (e.g. --grid hidden=128,256), or --resume DIR")
        plan = sweeps.make_plan(
            sweeps.parse_grid(args.grid),
            data_spec(args),
            seeds=1 if args.seeds is None else args.seeds,
            fixed=given_config(args, skip=_SKIP),
            dev_size=DEV_SIZE if args.dev_size is None else args.dev_size,
            cache=args.cache,
            source=args.source,
            threads_per_trial=args.threads_per_trial,
        )
        _compile_note(args, plan)
        out = out_folder(args)
        table = sweeps.sweep(
            plan.grid,
            plan.data,
            args.scheduler,
            seeds=plan.seeds,
            fixed=plan.fixed,
            dev_size=plan.dev_size,
            threads_per_trial=plan.threads_per_trial,
            out=out,
            cache=plan.cache,
            source=plan.source,
            **cluster,
        )
    _report(table, out, args.quiet)


def _report(table, out: str, quiet: bool) -> None:
    """Print the summary; a sweep whose every trial failed is an error."""
    from .. import sweeps

    failed = table["error"].notna()
    if not quiet:
        attrs = table.attrs
        if attrs["workers"]:
            print(
                f"fastnn sweep: {len(table)} trials ({int(failed.sum())} failed) on {attrs['workers']} "
                f"workers in {attrs['wall_seconds']:.1f} s"
            )
        else:
            print(f"fastnn sweep: all {len(table)} trials had finished ({int(failed.sum())} failed); nothing to run")
        print(sweeps.format_summary(table))
        if attrs["best"] is not None:
            print(f"  best: trial {attrs['best']} (by dev accuracy), report in {out}/best/")
        print(f"  results: {out}/sweep.csv, {out}/sweep.json")
    if failed.all():
        raise FastnnError(f"all {len(table)} trials failed; the first: {table['error'].iloc[0]}")
