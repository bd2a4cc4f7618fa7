"""uv: finds Python itself (pyenv's included); `uv sync` makes .venv and writes uv.lock."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..manager import Manager
from ..probe import ProbeReport
from ..report import Report, last_line, lock_readable
from ..running import ToolError, install_hint, python_version_of, query, run, say
from ..shell import WINDOWS, venv_activation

# Where the package index is set (also conda-uv's).
INDEX_SETTING = (
    "pyproject.toml's [[tool.uv.index]] (default = true; copier's package_index_url "
    "answer writes it), or UV_DEFAULT_INDEX for one run (uv)"
)


def downloads_allowed() -> bool:
    """Whether uv may fetch a managed Python (the user can forbid it; offline mode forbids it)."""
    setting = os.environ.get("UV_PYTHON_DOWNLOADS", "automatic").strip().lower()
    offline = os.environ.get("UV_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return setting not in ("never", "manual", "false", "0") and not offline


def check_lock_and_sync(
    report: Report,
    manager: Manager,
    uv: str,
    dry_run: list[str] | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """The doctor's checks of a readable uv.lock (uv and conda-uv): `uv lock --check`, then what
    the `uv sync ... --dry-run` command would change (None: there is no environment)."""
    code, _, err = query([uv, "lock", "--check"], manager.project, env=env)
    if code:
        report.problem(
            f"uv.lock is out of date with pyproject.toml: {last_line(err)}", manager.fix_lock()
        )
        return
    report.ok("uv.lock matches pyproject.toml (uv lock --check)")
    if dry_run is None:
        return
    code, out, err = query(dry_run, manager.project, env=env)
    changes = [s.strip() for s in (out + err).splitlines() if s.startswith((" + ", " - ", " ~ "))]
    if code:
        report.problem(f"uv sync --dry-run failed: {last_line(err)}", manager.fix_env())
    elif changes:
        report.problem(
            f"the environment differs from uv.lock: {', '.join(changes)}", manager.fix_env()
        )
    else:
        report.ok("the environment matches uv.lock (uv sync --locked --dry-run: no changes)")


class UvManager(Manager):
    """uv: .venv, uv.lock, uv's own Python discovery."""

    name = title = "uv"
    tool_install = (
        "install uv (`pipx install uv`, `python3 -m pip install --user uv`, or the installer at "
        "https://docs.astral.sh/uv/getting-started/installation/)"
    )
    alternatives = ("venv",)
    lock_file = "uv.lock"
    lock_args = ("lock",)
    index_setting = INDEX_SETTING

    def _uv_find(self, version: str) -> Path | None:
        """uv's answer, from a neutral folder (in the project it would name the existing .venv),
        with pyenv's Pythons of `version` on its PATH: uv does not look into pyenv's versions
        folder, and pyenv's shims serve only the selected version."""
        root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
        found = [d for d in root.glob(f"{version}.*") if re.fullmatch(r"\d+\.\d+\.\d+", d.name)]
        found.sort(key=lambda d: int(d.name.rsplit(".", 1)[1]), reverse=True)  # 3.12.10 first
        path = [str(d if WINDOWS else d / "bin") for d in found] + [os.environ.get("PATH", "")]
        cmd = [str(self.tool), "python", "find", "--no-project", "--no-python-downloads", version]
        code, out, _ = query(cmd, Path(tempfile.gettempdir()), env={"PATH": os.pathsep.join(path)})
        have = python_version_of(out.strip()) if code == 0 and out.strip() else None
        return Path(out.strip()) if have and have.startswith(version + ".") else None

    def find_interpreter(self) -> str:
        """uv's Python of python_version (PATH, uv's own, pyenv's), else one uv downloads: never
        silently (it says so), never when downloads are off (UV_PYTHON_DOWNLOADS, UV_OFFLINE)."""
        want, how = self.config.python_version, "found"
        self.interpreter = self._uv_find(want)
        if not self.interpreter:
            if not downloads_allowed():
                raise ToolError(
                    f"no Python {want} found on this machine, and uv may not download one "
                    "(UV_PYTHON_DOWNLOADS=never or UV_OFFLINE is set)",
                    why="uv looked on PATH, among its own Pythons and in pyenv's versions folder",
                    fix=f"{install_hint(want)}, or allow uv to download it (unset UV_PYTHON_DOWNLOADS)",
                )
            say(f"  No Python {want} on this machine: uv downloads a managed Python {want} now.")
            run([str(self.tool), "python", "install", want], self.project,
                what=f"uv could not download Python {want} (no network?)",
                fix=f"connect to the internet, or {install_hint(want)}")  # fmt: skip
            self.interpreter, how = self._uv_find(want), "downloaded"
        if not self.interpreter:
            raise ToolError(
                f"uv installed Python {want} but cannot find it", fix=install_hint(want)
            )
        return f"Python {python_version_of(self.interpreter)} at {self.interpreter} ({how} by uv)"

    def create(self) -> str:
        """Reuse .venv when its Python is python_version, else `uv venv --clear` it with the
        found Python (after claim_venv)."""
        self.claim_venv()
        have = python_version_of(self.env_python()) if self.env_python().exists() else None
        if have and have.startswith(self.config.python_version + "."):
            return f"reusing .venv (Python {have})"
        run([str(self.tool), "venv", "--clear", "--no-python-downloads", "--python",
             str(self.interpreter), "--prompt", self.config.project_slug, ".venv"], self.project)  # fmt: skip
        return "created .venv"

    def install(self) -> str:
        """`uv sync`: the project (editable), its dependencies and the dev group into .venv."""
        run([str(self.tool), "sync", "--no-python-downloads", "--python", str(self.interpreter)],
            self.project,
            fix="check the package names and versions in pyproject.toml ([project] dependencies)")  # fmt: skip
        return "uv sync installed the project (editable), its dependencies and the dev group"

    def activation(self) -> str:
        """.venv's activate script; `uv run <command>` needs no activation."""
        run_it = f"`{self.tool_command()} run <command>` needs no activation"
        return f"{venv_activation('.venv')}   (optional: {run_it})"

    def fix_import(self, distribution: str, version: str) -> str:
        """The doctor's fix for a package that does not import: `uv sync --reinstall-package`."""
        return f"{self.tool_command()} sync --reinstall-package {distribution}"

    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """The doctor's uv.lock checks: uv installed, the lock readable, `uv lock --check`,
        and `uv sync --locked --dry-run` when there is an environment."""
        report.section("Lock file (uv.lock)")
        uv = self.doctor_tool(report)
        if uv and lock_readable(report, self.project / "uv.lock", self.fix_lock()):
            dry_run = None if found is None else [uv, "sync", "--locked", "--dry-run"]
            check_lock_and_sync(report, self, uv, dry_run)


MANAGER = UvManager
