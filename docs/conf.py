"""Sphinx configuration: numpydoc API reference, MyST user guide, sphinx-gallery examples.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (what CI runs).
``FASTNN_DOCS_QUICK=1`` runs the gallery on reduced data (CI); without it the examples
train on full MNIST.  Nothing is fetched from the internet: no intersphinx, no CDN assets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fastnn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a source checkout builds its own fastnn

project = "fastnn"
author = "fastnn's authors"
copyright = "fastnn's authors, MIT licence"  # Sphinx's name, shadowing the builtin
release = fastnn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]
default_role = "code"  # `x` in a docstring is code, as in Markdown

# --- API reference: numpydoc over autodoc, one page per public name (autosummary) ---------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc writes the types from the docstrings; signatures keep the hints
numpydoc_show_class_members = False  # members are listed by the class template, not twice
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

# --- user guide in Markdown (MyST): the README's sections moved as written ----------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # pages start at '#', their sections may skip levels in tables

# --- the gallery: examples/ executed at build time, each with its figures ----------------------
QUICK = os.environ.get("FASTNN_DOCS_QUICK", "") not in ("", "0")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "write_computation_times": False,  # its page loads DataTables from a CDN
    "reset_modules": ("matplotlib",),
    "image_scrapers": ("matplotlib",),
    "first_notebook_cell": None,
    "promote_jupyter_magic": False,
    "backreferences_dir": None,
}

# --- benchmark plots drawn from the figures the pages quote (matplotlib's plot directive) -------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]

# --- HTML: pydata-sphinx-theme, as scikit-learn's site; every asset ships with the theme ---------
html_theme = "pydata_sphinx_theme"
html_title = f"fastnn {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False

sys.path.insert(0, str(Path(__file__).resolve().parent / "_plots"))  # the plots' table reader


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_*_request`` on every estimator (metadata routing); their
    docstrings cite scikit-learn's own glossary, and scikit-learn's documentation covers them."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)
