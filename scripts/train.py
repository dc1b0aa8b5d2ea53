#!/usr/bin/env python
"""Train fastnn on MNIST (or another dataset) and write the report (``fastnn train``): see --help."""

import sys
from pathlib import Path

# Run from a source checkout without installing: make the package next door importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.cli import main

if __name__ == "__main__":
    sys.exit(main(command="train", prog="train.py"))
