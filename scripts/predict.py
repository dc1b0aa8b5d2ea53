#!/usr/bin/env python
"""Predict with a saved fastnn model (``fastnn predict``): see --help."""

import sys
from pathlib import Path

# Run from a source checkout without installing: make the package next door importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.cli import main

if __name__ == "__main__":
    sys.exit(main(command="predict", prog="predict.py"))
