"""One version, written once: ``fastnn.__version__``; pyproject.toml reads it, the changelog names it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

import fastnn

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_takes_its_version_from_the_package():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version is written in fastnn/__init__.py only"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fastnn.__version__"}


def test_the_installed_distribution_has_the_packages_version():
    # An install older than the source tree says so here: reinstall (pip install -e .).
    assert metadata.version("fastnn") == fastnn.__version__


def test_the_changelog_describes_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[?(\d+\.\d+\.\d+)", changelog, flags=re.M)
    assert versions, "CHANGELOG.md has no '## X.Y.Z' sections"
    assert versions[0] == fastnn.__version__, "the newest changelog entry is the package's version"
    assert "0.1.0" in versions
