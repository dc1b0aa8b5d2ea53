#!/usr/bin/env python
"""Export a trained fastnn model to ONNX: ``python scripts/export.py runs/latest/model.npz -o model.onnx``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
