"""`python tools/envtool <command>` (a folder with __main__.py), or `python -m envtool`."""

import importlib
import sys
from pathlib import Path

if not __package__:
    # Run as a folder: import it as a package (PEP 366) under its own name, and drop the folder
    # itself from sys.path, so that `managers/uv.py` never shadows `uv`.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [str(_here.parent), *(p for p in sys.path if Path(p or ".").resolve() != _here)]
    __package__ = _here.name

# copier's tasks run the template's copy of the tool, which alone has copying.py.
tasks = {"git-init", "--from-copier"} & set(sys.argv[1:])
sys.exit(importlib.import_module(f"{__package__}.{'copying' if tasks else 'cli'}").main())
