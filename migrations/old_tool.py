"""Remove what copier update leaves of the v0.1.0 environment tool: bytecode folders.

v0.1.0 shipped the tool as tools/envsetup/ and a doctor as src/<package>/doctor.py; 0.2.0 has
tools/envtool/. `copier update` deletes the old files the user did not change, but not the
__pycache__ folders Python wrote beside them, so tools/envsetup/ would stay as a folder of stale
bytecode. Run by `_migrations` (after stage, copier's Python, in the project folder):

    python migrations/old_tool.py tools/envsetup src/<package>/__pycache__/doctor.*

A folder is removed only when nothing but bytecode is left in it; a file the user kept (an edited
tool file copier did not delete) keeps the folder, and this says so.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

BYTECODE = (".pyc", ".pyo")


def only_bytecode(folder: Path) -> bool:
    """Whether every file under `folder` is a .pyc/.pyo in a __pycache__ folder."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return all(p.suffix in BYTECODE and p.parent.name == "__pycache__" for p in files)


def remove(project: Path, pattern: str) -> str | None:
    """Remove what `pattern` names when it is only bytecode; say what happened (None: absent)."""
    said = []
    for path in sorted(project.glob(pattern)):
        if path.is_dir() and only_bytecode(path):
            shutil.rmtree(path)
            said.append(f"removed {path.relative_to(project)}/ (stale bytecode of the old tool)")
        elif path.is_file() and path.suffix in BYTECODE:
            path.unlink()
            said.append(f"removed {path.relative_to(project)}")
        elif path.is_dir():
            said.append(f"kept {path.relative_to(project)}/: it holds files you changed")
    return "; ".join(said) or None


def main(argv: list[str]) -> int:
    """Clean each glob pattern in `argv` under the project (the current folder); always 0."""
    project = Path.cwd()
    for pattern in argv:
        message = remove(project, pattern)
        if message:
            print(f"copier-mlops migration 0.2.0: {message}")
    return 0  # never fail an update over leftovers


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
