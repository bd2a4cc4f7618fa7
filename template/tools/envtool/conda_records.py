"""conda's own records of a prefix (conda-meta/*.json): which Python distributions conda
installed, whether an install replaced one, whether a prefix is conda's base; and the image
build's guard. Used by the conda+Poetry and conda+uv projects (managers/_hybrid.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import canonical
from .running import say


@dataclass(frozen=True)
class Owned:
    """A Python distribution conda installed: its dist-info folder and a digest of its RECORD."""

    name: str
    version: str
    folder: str  # relative to the prefix, as conda-meta records it
    digest: str


def _digest(folder: Path) -> str:
    """A digest of a dist-info folder's RECORD (else METADATA): changes when it is rewritten."""
    record = folder / "RECORD"
    if not record.is_file():
        record = folder / "METADATA"
    try:
        return hashlib.sha256(record.read_bytes()).hexdigest()
    except OSError:
        return ""


def conda_owned(prefix: Path) -> dict[str, Owned]:
    """Distribution -> what conda installed, from the dist-info folders its records list."""
    owned: dict[str, Owned] = {}
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            files = json.loads(record.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError):
            continue
        folders = {
            f.replace("\\", "/").split(".dist-info/")[0] for f in files if ".dist-info/" in f
        }
        for folder in sorted(folders):
            name, _, version = Path(folder).name.rpartition("-")
            rel = folder + ".dist-info"
            if name and (prefix / rel).is_dir():
                owned[canonical(name)] = Owned(name, version, rel, _digest(prefix / rel))
    return owned


def installer_of(folder: Path) -> str:
    """Who installed a dist-info folder (its INSTALLER file), else "unknown"."""
    try:
        return (folder / "INSTALLER").read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def replaced(prefix: Path, before: dict[str, Owned]) -> list[str]:
    """conda's distributions that an install removed, replaced or rewrote (empty: none)."""
    problems = []
    for key, was in sorted(before.items()):
        folder = prefix / was.folder
        if folder.is_dir() and _digest(folder) == was.digest:
            continue
        pattern = f"{was.name}-*.dist-info"
        now = [f for f in folder.parent.glob(pattern) if canonical(f.name.split("-")[0]) == key]
        if now:
            version = now[0].name[len(was.name) + 1 : -len(".dist-info")]
            by = installer_of(now[0])
            problems.append(f"{was.name} {was.version} (conda's) was replaced by {version} ({by})")
        else:
            problems.append(f"{was.name} {was.version} (conda's) was removed")
    return problems


def base_reason(prefix: Path) -> str | None:
    """Why `prefix` is conda's base (root) environment, or None. Never install into it."""
    meta = prefix / "conda-meta"
    if (meta / "history").is_file() and any(meta.glob("conda-[0-9]*.json")):
        return "conda itself is installed in it, which only the base environment has"
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        root = os.environ.get(var)
        if root and Path(root).resolve() == prefix.resolve():
            return f"it is conda's root prefix (${var})"
    if (
        os.environ.get("CONDA_DEFAULT_ENV") == "base"
        and os.environ.get("CONDA_PREFIX")
        and Path(os.environ["CONDA_PREFIX"]).resolve() == prefix.resolve()
    ):
        return "it is the active base environment (CONDA_DEFAULT_ENV=base)"
    return None


def guard(command: list[str]) -> int:
    """`python -m envtool.managers.conda guard <uv or poetry command>` (the image build): runs the
    Python half's install in this interpreter's environment, the same way the set-up does (uv:
    --no-install-package for each of conda's packages), and fail if one of them was replaced."""
    prefix = Path(sys.prefix)
    before = conda_owned(prefix)
    env = dict(os.environ)
    if Path(command[0]).name.startswith("uv"):
        env["UV_PROJECT_ENVIRONMENT"] = str(prefix)
        command = [
            *command,
            *(a for name in sorted(before) for a in ("--no-install-package", name)),
        ]
    else:
        env["POETRY_VIRTUALENVS_CREATE"] = "false"
    say(f"guard: {len(before)} conda packages in {prefix}; running {' '.join(command)}")
    code = subprocess.run(command, env=env, check=False).returncode
    problems = replaced(prefix, before)
    for problem in problems:
        say(f"guard: {problem}")
    return code or (1 if problems else 0)
