"""Find an interpreter of an exact `major.minor` version, never silently another one.

Order: `python3.X` on PATH, `python3`/`python` on PATH, pyenv's versions folder ($PYENV_ROOT or
~/.pyenv: its shims only work for the selected version), the `py -3.X` launcher on Windows, and
the Python running the tool. Every candidate is run to confirm its version.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .base import WINDOWS, ToolError, capture

PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"


@dataclass
class Discovery:
    """The result of a search: the interpreter (if any) and every place that was looked at."""

    version: str
    python: Path | None = None
    full_version: str = ""
    tried: list[str] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # other versions found: version -> path

    def other_versions(self) -> list[str]:
        return sorted({".".join(v.split(".")[:2]) for v in self.seen}, key=_version_key)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v))


def pyenv_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def candidates(version: str, environ: Mapping[str, str] | None = None) -> Iterator[list[str]]:
    """Commands that may start a Python `version`, best first (each is checked by running it)."""
    environ = os.environ if environ is None else environ
    path = environ.get("PATH", "")
    names = [f"python{version}", "python3", "python"]
    if WINDOWS:
        names = [f"python{version}.exe", "python3.exe", "python.exe", *names]
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            yield [found]
    versions = pyenv_root(environ) / "versions"
    if versions.is_dir():
        # 3.12.1 before 3.12.0; skip 3.12-dev style and virtualenvs named after versions.
        exact = [
            d for d in versions.iterdir() if re.fullmatch(rf"{re.escape(version)}\.\d+", d.name)
        ]
        for d in sorted(exact, key=lambda d: _version_key(d.name), reverse=True):
            exe = d / ("python.exe" if WINDOWS else f"bin/python{version}")
            if exe.exists():
                yield [str(exe)]
    if WINDOWS:
        launcher = shutil.which("py", path=path)
        if launcher:
            yield [launcher, f"-{version}"]
    yield [sys.executable]


def find_python(version: str, environ: Mapping[str, str] | None = None) -> Discovery:
    """Search for Python `version` (e.g. "3.12"); the result lists every interpreter tried."""
    result = Discovery(version)
    done: set[str] = set()
    for cmd in candidates(version, environ):
        key = " ".join(cmd)
        if key in done:
            continue
        done.add(key)
        result.tried.append(key)
        out = capture([*cmd, "-c", PROBE], timeout=30)
        lines = out.split("\n") if out else []
        if len(lines) < 2 or not lines[0]:
            continue
        full, exe = lines[0].strip(), lines[1].strip()
        if ".".join(full.split(".")[:2]) == version:
            result.python, result.full_version = Path(exe), full
            return result
        result.seen.setdefault(full, exe)
    return result


def install_hint(version: str) -> str:
    """How to get Python `version` on this kind of machine."""
    hints = []
    if shutil.which("pyenv"):
        hints.append(f"`pyenv install {version}`")
    if shutil.which("uv"):
        hints.append(f"`uv python install {version}`")
    if WINDOWS:
        hints.append(f"`winget install Python.Python.{version}` or the installer from python.org")
    elif sys.platform == "darwin":
        hints.append(f"`brew install python@{version}` or the installer from python.org")
    else:
        hints.append(f"your system's package manager (e.g. `apt install python{version}-venv`)")
    return "install Python " + version + " with " + ", or ".join(hints)


def require_python(version: str) -> Discovery:
    """find_python, or a ToolError naming what was found instead and how to install `version`."""
    found = find_python(version)
    if not found.python:
        others = ", ".join(found.other_versions()) or "none"
        raise ToolError(
            f"no Python {version} found on this machine (Python versions found: {others})",
            why="looked at: " + "; ".join(found.tried),
            fix=f"{install_hint(version)}; the tool never switches to another version by itself",
        )
    return found
