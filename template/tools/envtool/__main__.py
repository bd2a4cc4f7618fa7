"""Entry point: `python tools/envtool <command>` (a folder with __main__.py) or `python -m envtool`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if not __package__:
    # Run as a file or folder: make the folder importable as a package (PEP 366) under its own
    # name, and drop the folder itself from sys.path so `managers/uv.py` never shadows `uv`.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))
    __package__ = _here.name
    importlib.import_module(__package__)

main = importlib.import_module(f"{__package__}.cli").main

if __name__ == "__main__":
    sys.exit(main())
