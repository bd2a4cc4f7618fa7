"""conda's own records of a prefix (conda-meta/*.json): which Python distributions conda
installed, whether an install replaced one, whether a prefix is conda's base; and the image
build's guard. Used by the conda+Poetry and conda+uv projects (managers/_hybrid.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
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


def keep_conda(
    lock_tool: str, prefix: Path, owned: Iterable[str]
) -> tuple[list[str], dict[str, str]]:
    """The arguments and variables with which the Python tool (the config's lock_tool) installs
    into `prefix` and leaves conda's packages (`owned`) alone: uv skips each of them; Poetry,
    which cannot skip one (conda_poetry checks its dry run), never makes a virtualenv."""
    if lock_tool == "uv":
        skip = [a for name in sorted(owned) for a in ("--no-install-package", name)]
        return skip, {"UV_PROJECT_ENVIRONMENT": str(prefix)}  # never a .venv beside it (uv #7829)
    return [], {"POETRY_VIRTUALENVS_CREATE": "false"}


def guard(command: list[str]) -> int:
    """`python -m envtool.managers.conda guard <install command>` (the image build, with the
    project's tools/ mounted): run the Python half's install in this interpreter's environment
    as the set-up does (keep_conda, by tools/envtool.json's lock_tool), and fail if it replaced
    one of conda's packages."""
    prefix = Path(sys.prefix)
    before = conda_owned(prefix)
    config = json.loads((Path(__file__).resolve().parents[1] / "envtool.json").read_text("utf-8"))
    skip, env = keep_conda(config["lock_tool"], prefix, before)
    command = [*command, *skip]
    say(f"guard: {len(before)} conda packages in {prefix}; running {' '.join(command)}")
    code = subprocess.run(command, env={**os.environ, **env}, check=False).returncode
    problems = replaced(prefix, before)
    for problem in problems:
        say(f"guard: {problem}")
    return code or (1 if problems else 0)
