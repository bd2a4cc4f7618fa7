"""Find an interpreter of an exact `major.minor` version (venv, Poetry), never silently another:
`python3.X`, `python3`, `python` on PATH, pyenv's versions folder ($PYENV_ROOT or ~/.pyenv: its
shims serve only the selected version), `py -3.X` on Windows, the running Python; each is run."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .running import ToolError, capture, install_hint
from .shell import WINDOWS


@dataclass
class Discovery:
    """A search's result: the interpreter (if any), what was tried, other versions seen."""

    version: str
    python: Path | None = None
    full_version: str = ""
    tried: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # "3.11.7"

    def other_versions(self) -> list[str]:
        """The other `major.minor` versions seen, oldest first."""
        return sorted(
            {".".join(v.split(".")[:2]) for v in self.seen},
            key=lambda v: [int(p) for p in v.split(".")],
        )


def candidates(version: str, environ: Mapping[str, str]) -> Iterator[list[str]]:
    """Commands that may start a Python `version`, best first (each is checked by running it)."""
    names = [f"python{version}", "python3", "python"]
    for name in [*(f"{n}.exe" for n in names if WINDOWS), *names]:
        if found := shutil.which(name, path=environ.get("PATH", "")):
            yield [found]
    versions = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    # 3.12.1 before 3.12.0; not 3.12-dev and not virtualenvs named after versions.
    exact = [
        d
        for d in versions.glob(f"{version}.*")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", d.name)
    ]
    for d in sorted(exact, key=lambda d: int(d.name.rsplit(".", 1)[1]), reverse=True):
        if (exe := d / ("python.exe" if WINDOWS else f"bin/python{version}")).exists():
            yield [str(exe)]
    if WINDOWS and (launcher := shutil.which("py", path=environ.get("PATH", ""))):
        yield [launcher, f"-{version}"]
    yield [sys.executable]


def find_python(version: str, environ: Mapping[str, str] | None = None) -> Discovery:
    """Search for Python `version` (e.g. "3.12"); the result lists every interpreter tried."""
    result = Discovery(version)
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"
    for cmd in candidates(version, os.environ if environ is None else environ):
        if " ".join(cmd) in result.tried:
            continue
        result.tried.append(" ".join(cmd))
        full, _, exe = (capture([*cmd, "-c", code], timeout=30) or "").strip().partition("\n")
        if full and exe and full.startswith(version + "."):
            result.python, result.full_version = Path(exe.strip()), full.strip()
            return result
        if full and exe:
            result.seen.add(full.strip())
    return result


def require_python(version: str) -> tuple[Path, str]:
    """(interpreter, full version) of Python `version`, or a ToolError naming what was found
    instead and how to install it."""
    found = find_python(version)
    if not found.python:
        raise ToolError(
            f"no Python {version} found on this machine (Python versions found: "
            f"{', '.join(found.other_versions()) or 'none'})",
            why="looked at: " + "; ".join(found.tried),
            fix=f"{install_hint(version)}; the tool never switches to another version by itself",
        )
    return found.python, found.full_version
