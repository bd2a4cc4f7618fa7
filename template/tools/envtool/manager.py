"""The Manager class (the set-up's steps every manager defines, its fix texts), loading a
project's manager (managers/<env_manager>.py), and proving a .venv is the project's."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .config import CommandName, Config
from .report import Report, corrupt_lock, or_make
from .running import ToolError, capture, clean_env, run
from .shell import command_for, remember, venv_activation, venv_python, which

if TYPE_CHECKING:  # the probe runs alone in the environment; the tool only reads its report
    from .probe import ProbeReport


class Manager(ABC):
    """One environment manager. The set-up calls the steps in order (find_tool, find_interpreter,
    create, install, lock); each returns a note for the log or raises ToolError. The defaults suit
    an in-project .venv made by a tool (uv, Poetry); venv and conda override them."""

    name = ""
    title = ""  # the tool's name in prose (uv, Poetry)
    tool_install = ""  # how to install the tool: the fix when it is missing
    version_args: tuple[str, ...] = ("--version",)
    lock_file: str | None = None
    lock_args: tuple[str, ...] = ()  # the tool's own lock command (uv, poetry)
    dependency_files = "pyproject.toml"
    requirement_files: tuple[str, ...] = ()  # read by the doctor besides pyproject.toml
    pins_lock = False  # whether the probe reads the lock's pins (a pip freeze, poetry.lock)
    alternatives: tuple[str, ...] = ()  # managers that can build the project without the tool
    # Where the package index is set (the fix for an unreachable one names it).
    index_setting = "`pip config set global.index-url <URL>` or PIP_INDEX_URL (pip)"

    def __init__(self, config: Config) -> None:
        """Keep the config; tool and interpreter are set by the find steps; the env is .venv."""
        self.config = config
        self.project = config.project
        self.tool: str | None = None
        self.interpreter: Path | None = None
        self.venv = self.project / ".venv"

    def find_tool(self) -> str:
        """Find the tool (which(), recorded for later runs); the note is its version and path."""
        self.tool = which(self.name, self.project)
        if not self.tool:
            raise ToolError(
                f"{self.title} is not installed (not found on PATH)", fix=self.tool_install
            )
        remember(self.project, self.name, self.tool)
        version = (capture([self.tool, *self.version_args]) or "").strip()
        return f"{version or self.name} at {self.tool}"

    def doctor_tool(self, report: Report) -> str | None:
        """The tool for the doctor's lock checks (a problem when it is missing)."""
        found = which(self.name, self.project)
        if found is None:
            what = f"{self.title} is not installed (not on PATH, nor in ~/.copier-mlops)"
            report.problem(what, self.tool_install)
        return found

    @abstractmethod
    def find_interpreter(self) -> str:
        """Find a Python of config.python_version (self.interpreter), or say who provides one."""

    @abstractmethod
    def create(self) -> str:
        """Create the environment, or reuse a good one (idempotent); the note says which."""

    @abstractmethod
    def install(self) -> str:
        """Install the project, editable, with its runtime and dev dependencies into the env."""

    @abstractmethod
    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """The doctor's check that the lock file is there and in step with the dependency files."""

    def install_checked(self) -> str:
        """install(), after refusing a corrupt TOML lock (uv.lock, poetry.lock: a bad merge, a
        cut write) with the doctor's fix: the tools would fail on it with misleading words."""
        if self.lock_file in ("uv.lock", "poetry.lock"):
            corrupt = corrupt_lock(self.project / self.lock_file, self.fix_lock())
            if corrupt:
                raise corrupt
        return self.install()

    def lock_files(self) -> list[str]:
        """The lock files the set-up writes (committed with the first commit, when it is ours)."""
        return [self.lock_file] if self.lock_file else []

    def tool_env(self) -> dict[str, str]:
        """The variables the manager's tool runs with: the clean environment (Poetry adds some)."""
        return clean_env()

    def lock(self, refresh: bool = False) -> str:
        """Write the lock file (set-up: confirm the one the install wrote; refresh: re-resolve)."""
        assert self.tool is not None and self.lock_file is not None
        if refresh or not (self.project / self.lock_file).exists():
            run([self.tool, *self.lock_args], self.project, env=self.tool_env())
            return f"{self.name} {' '.join(self.lock_args)} wrote {self.lock_file}"
        return f"{self.lock_file} written by the install"

    def env_python(self) -> Path:
        """The environment's Python executable: the one in the project's .venv."""
        return venv_python(self.venv)

    def claim_venv(self) -> None:
        """Before creating or reusing .venv: stop unless it is provably this project's."""
        slug = self.config.project_slug
        if (self.venv.exists() or self.venv.is_symlink()) and not venv_belongs_to(
            self.venv, self.project, slug
        ):
            raise ToolError(
                f"{self.venv} exists but is not this project's environment (no editable install "
                f"of {self.project} in it, and it was not created for {slug})",
                why="the tool never deletes or reuses an environment it cannot prove is this "
                "project's: it may hold another project's packages",
                fix="move it away (`mv .venv .venv.old`), or delete it if you do not need it",
            )

    def create_or_undo(self) -> str:
        """create(); a .venv this run began but could not finish (failure, Ctrl-C, SIGHUP) is
        removed: nothing in it is the user's, and half-made the retry would refuse it."""
        began = not self.venv.exists() and not self.venv.is_symlink()
        try:
            return self.create()
        except BaseException:
            if began:
                shutil.rmtree(self.venv, ignore_errors=True)
            raise

    def location(self) -> str:
        """Where the environment is (the summary, the doctor): the .venv folder."""
        return str(self.venv)

    def activation(self) -> str:
        """How the user activates the environment in their shell: .venv's activate script."""
        return venv_activation(".venv")

    def command(self, key: CommandName) -> str:
        """One of the manager's commands (copier.yml's manager_commands), as the user types it:
        the tool by its full path when their PATH does not find it."""
        head, sep, rest = self.config.commands[key].partition(" ")
        return f"{self.tool_command()}{sep}{rest}" if head == self.name else f"{head}{sep}{rest}"

    def fix_env(self) -> str:
        """The doctor's fix for a missing or incomplete environment."""
        return or_make(self.command("env"), "make env")

    def fix_lock(self) -> str:
        """The doctor's fix for a lock file out of step with the dependency files."""
        return or_make(f"{self.command('lock')}, then {self.command('env')}", "make lock env")

    def fix_import(self, distribution: str, version: str) -> str:
        """The doctor's fix for one installed package that does not import."""
        return f"{self.env_python()} -m pip install --force-reinstall --no-deps {distribution}=={version}"

    def tool_command(self) -> str:
        """How the user types this manager's tool in a new terminal."""
        found = self.tool or which(self.name, self.project)
        return command_for(self.name, found) if found else self.name


def venv_belongs_to(venv: Path, project: Path, slug: str) -> bool:
    """Whether `venv` is provably `project`'s: its prompt is the slug (ours; Poetry's is
    "<slug>-py3.X": copier writes only into empty folders and its own projects, so no foreign
    .venv comes with the copy), or it holds an editable install of the project."""
    try:
        cfg = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not a virtual environment at all
    prompt = re.search(r"^prompt\s*=\s*(.*?)\s*$", cfg, re.MULTILINE)
    if prompt and re.fullmatch(rf"{re.escape(slug)}(-py\d+\.\d+)?", prompt[1].strip("'\"")):
        return True
    for direct_url in venv.glob("*/*/site-packages/*.dist-info/direct_url.json"):
        try:
            url = json.loads(direct_url.read_text(encoding="utf-8")).get("url", "")
        except (OSError, ValueError, AttributeError):
            continue
        if url.rstrip("/") == project.resolve().as_uri():
            return True
    return False


def manager_class(name: str) -> type[Manager]:
    """The manager `name` (managers/<name>.py); a module that fails to load (a syntax error, a
    module it imports missing) is reported with its own error and how to restore it."""
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(f"{__package__}.managers.{module_name}")
    except Exception as exc:
        raise ToolError(
            f"the {name} manager (tools/envtool/managers/{module_name}.py) could not be loaded: "
            f"{type(exc).__name__}: {exc}",
            fix="restore the tool's files: `git status tools/envtool` shows what changed, "
            "`git checkout -- tools/envtool` restores them",
        ) from exc
    return cast("type[Manager]", module.MANAGER)


def manager_for(config: Config) -> Manager:
    """The manager object for a project's config."""
    return manager_class(config.env_manager)(config)
