"""Shared helpers: render the template with copier's API, run a command, find the index pip uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

# Re-exported: the hook's own rule for a venv's python (bin/python, or Scripts/python.exe).
from hooks.base import venv_python as venv_python

ROOT = Path(__file__).resolve().parents[1]
DEV_BIN = Path(sys.executable).parent  # the test venv's bin/ (Scripts/ on Windows)
WINDOWS = sys.platform == "win32"


def program(folder: Path, name: str) -> str:
    """`folder`'s program `name` (name.exe on Windows: a path needs the suffix there)."""
    return str(folder / (f"{name}.exe" if WINDOWS else name))


def dev_tool(name: str) -> str:
    """The test venv's program `name` (copier, uv, ruff...)."""
    return program(DEV_BIN, name)


COPIER = dev_tool("copier")

# Answers that keep a render side-effect free: no environment, no git repository.
QUIET = {"create_env": False, "git_init": False}


def posix_only(needs: str) -> pytest.MarkDecorator:
    """Skip on Windows a test that needs `needs`, which only POSIX systems have."""
    return pytest.mark.skipif(WINDOWS, reason=f"{needs}: POSIX only, not on Windows")


def link_dev_tool(bin_dir: Path, tool: str) -> None:
    """Link the test venv's `tool` (uv, poetry) into `bin_dir`, to put just that tool on PATH."""
    target = Path(dev_tool(tool))
    if not (bin_dir / target.name).exists():
        (bin_dir / target.name).symlink_to(target)


def render(template: Path, dst: Path, **answers: Any) -> Path:
    """Render `template` into `dst` with `answers` on top of the defaults (hook and git off)."""
    run_copy(
        str(template),
        dst,
        data={**QUIET, **answers},
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    return dst


def run_captured(
    cmd: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` with no stdin (nothing may wait for a prompt), its output captured as UTF-8
    text; the exit status is left to the test."""
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        check=False,
    )


def pip_index_url() -> str:
    """The simple-index URL pip is configured with (pip's own default when none is set)."""
    for key in ("PIP_INDEX_URL",):
        if os.environ.get(key):
            return os.environ[key]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        out.stdout.strip()
        if out.returncode == 0 and out.stdout.strip()
        else "https://pypi.org/simple"
    )


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree (no .git): renders see uncommitted edits and are fast."""
    dst = tmp_path_factory.mktemp("template-src")
    for name in ("copier.yml", "template", "hooks", "migrations"):  # migrations: for _migrations
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst / name)
    return dst
