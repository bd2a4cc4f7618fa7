"""uv: uv's own Python discovery (then ours), `uv sync` creates .venv and writes uv.lock."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..base import (
    HookError,
    Manager,
    capture,
    python_version_of,
    run,
    venv_activation,
    which,
)
from ..discovery import find_python, install_hint

INSTALL_UV = (
    "install uv (`pipx install uv`, `python3 -m pip install --user uv`, or the installer at "
    "https://docs.astral.sh/uv/getting-started/installation/)"
)


def downloads_allowed() -> bool:
    """Whether uv may fetch a managed Python (the user can forbid it; offline mode forbids it)."""
    setting = os.environ.get("UV_PYTHON_DOWNLOADS", "automatic").strip().lower()
    offline = os.environ.get("UV_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return setting not in ("never", "manual", "false", "0") and not offline


class UvManager(Manager):
    name = "uv"
    lock_file = "uv.lock"

    def find_tool(self) -> str:
        self.tool = which("uv")
        if not self.tool:
            raise HookError("uv is not installed (not found on PATH)", fix=INSTALL_UV)
        version = (capture([self.tool, "--version"]) or "").strip()
        return f"{version or 'uv'} at {self.tool}"

    def _uv_find(self, version: str) -> Path | None:
        assert self.tool is not None
        # From a neutral folder: in the project uv would answer with the existing .venv.
        out = capture(
            [self.tool, "python", "find", "--no-project", "--no-python-downloads", version],
            cwd=Path(tempfile.gettempdir()),
        )
        path = Path(out.strip()) if out and out.strip() else None
        have = python_version_of(path) if path else None
        return path if have and have.startswith(version + ".") else None

    def find_interpreter(self) -> str:
        assert self.tool is not None
        want = self.config.python_version
        path = self._uv_find(want)
        if path:
            self.interpreter = path
            return f"Python {python_version_of(path)} at {path} (found by uv)"
        # uv does not look into pyenv's versions folder (pyenv's shims only serve one version).
        found = find_python(want)
        if found.python:
            self.interpreter = found.python
            return f"Python {found.full_version} at {found.python}"
        if not downloads_allowed():
            raise HookError(
                f"no Python {want} found on this machine, and uv may not download one "
                "(UV_PYTHON_DOWNLOADS=never or UV_OFFLINE is set)",
                why="looked at: " + "; ".join(found.tried),
                fix=f"{install_hint(want)}, or allow uv to download it (unset UV_PYTHON_DOWNLOADS)",
            )
        # Never silent: say that a download happens and why; a failure is reported as such.
        print(f"  No Python {want} on this machine: uv downloads a managed Python {want} now.")
        run(
            [self.tool, "python", "install", want],
            self.project,
            what=f"uv could not download Python {want} (no network?)",
            fix=f"connect to the internet, or {install_hint(want)}",
        )
        path = self._uv_find(want)
        if not path:
            raise HookError(
                f"uv installed Python {want} but cannot find it", fix=install_hint(want)
            )
        self.interpreter = path
        return f"Python {python_version_of(path)} at {path} (downloaded by uv)"

    def create(self) -> str:
        assert self.tool is not None and self.interpreter is not None
        self.claim_venv()
        have = python_version_of(self.env_python()) if self.env_python().exists() else None
        if have and have.startswith(self.config.python_version + "."):
            return f"reusing .venv (Python {have})"
        run(
            [
                self.tool,
                "venv",
                "--clear",
                "--no-python-downloads",
                "--python",
                self.interpreter,
                "--prompt",
                self.config.project_slug,
                ".venv",
            ],
            self.project,
        )
        return "created .venv"

    def install(self) -> str:
        assert self.tool is not None and self.interpreter is not None
        run(
            [self.tool, "sync", "--no-python-downloads", "--python", self.interpreter],
            self.project,
            fix="check the package names and versions in pyproject.toml ([project] dependencies)",
        )
        return "uv sync installed the project (editable), its dependencies and the dev group"

    def lock(self) -> str:
        assert self.tool is not None
        if not (self.project / "uv.lock").exists():
            run([self.tool, "lock"], self.project)
        return "uv.lock written by uv sync"

    def check_command(self) -> list[str]:
        assert self.tool is not None
        return [self.tool, "pip", "check", "--python", str(self.env_python())]

    def location(self) -> str:
        return str(self.venv)

    def activation(self) -> str:
        uv = self.tool_command()
        return venv_activation(".venv") + f"   (optional: `{uv} run <command>` needs no activation)"

    def test_command(self) -> str:
        return f"{self.tool_command()} run pytest   (or: make test)"

    def alternatives(self) -> list[str]:
        return ["venv"]
