"""The ``fastnn`` command: its subcommands, and the older entry points that run one of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastnn.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def run(*argv, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_fastnn_help_lists_every_subcommand_with_its_summary():
    proc = run("-m", "fastnn", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for name in SUBCOMMANDS:
        module = __import__(f"fastnn.cli.{name}", fromlist=["HELP"])
        assert name in proc.stdout
        assert module.HELP.split()[0] in proc.stdout
    assert {"train", "predict", "export"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: fastnn {name}")


def test_missing_or_unknown_subcommand_is_a_usage_error(capsys):
    for argv in ([], ["fit"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("fastnn: error:")


def test_every_subcommand_module_has_the_interface():
    parser = build_parser()
    for name in SUBCOMMANDS:
        module = __import__(f"fastnn.cli.{name}", fromlist=["HELP"])
        assert isinstance(module.HELP, str) and module.HELP
        assert callable(module.add_arguments) and callable(module.run)
    assert parser.prog == "fastnn"


def test_a_user_error_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.npz"), str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("error: ") and "missing.npz" in captured.err


@pytest.mark.parametrize("script,name", [("train.py", "train"), ("predict.py", "predict"), ("export.py", "export")])
def test_scripts_run_their_subcommand(script, name):
    proc = run(ROOT / "scripts" / script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {script}")
    ours = subprocess.run(
        [sys.executable, "-m", "fastnn", name, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    ).stdout
    # Same options as the subcommand: only the program name differs.
    assert (
        proc.stdout.replace(f"usage: {script}", "usage: X").split()
        == ours.replace(f"usage: fastnn {name}", "usage: X").split()
    )


def _options(name: str) -> dict:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[name]
    return {a.option_strings[0]: a for a in sub._actions if a.option_strings}


def test_train_and_sweep_share_their_option_definitions():
    from dataclasses import fields

    from fastnn.config import TrainConfig

    train, sweep = _options("train"), _options("sweep")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        for command, options in (("train", train), ("sweep", sweep)):
            if command == "sweep" and f.name == "log_every":
                continue  # a sweep keeps no per-step history
            action = options[flag]
            # The field's own type: a field parsed another way (a tuple of layer sizes) flows through.
            assert action.type is f.metadata["type"] and action.default is None, (command, flag)
            assert action.dest == f.name
    for flag in ("--data", "--dev-size", "--cache", "--source", "--out", "--no-plots", "--quiet"):
        assert flag in train and flag in sweep
    for flag in ("--dev-size", "--cache", "--source", "--no-plots", "--quiet"):
        assert train[flag].help == sweep[flag].help, flag
