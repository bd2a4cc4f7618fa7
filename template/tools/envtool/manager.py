"""The Manager class: the set-up's steps every environment manager defines, and its fix texts."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .ownership import venv_belongs_to
from .report import Report, corrupt_lock, or_make
from .running import ToolError, clean_env, run
from .shell import command_for, remember, venv_activation, venv_python, which

if TYPE_CHECKING:  # the probe runs alone in the environment; the tool only reads its report
    from .probe import ProbeReport


class Manager(ABC):
    """One environment manager. The set-up calls the steps in order; each may raise ToolError.
    The defaults suit an in-project .venv (uv, venv, Poetry); conda overrides them."""

    name = ""
    lock_file: str | None = None
    lock_args: tuple[str, ...] = ()  # the tool's own lock command (uv, poetry)
    dependency_files = "pyproject.toml"
    requirement_files: tuple[str, ...] = ()  # read by the doctor besides pyproject.toml
    pins_lock = False  # whether the probe reads the lock's pins (a pip freeze, poetry.lock)
    alternatives: tuple[str, ...] = ()  # managers that can build the project without the tool

    def __init__(self, config: Config) -> None:
        """Keep the config; tool and interpreter are set by the find steps; the env is .venv."""
        self.config = config
        self.project = config.project
        self.tool: str | None = None
        self.interpreter: Path | None = None
        self.venv = self.project / ".venv"

    # What every manager defines: the set-up's steps, in order (each returns a note for the log,
    # or raises ToolError; lock() follows install), and the doctor's check of the lock.
    @abstractmethod
    def find_tool(self) -> str:
        """Find the manager's executable (self.tool); the note names it, ToolError when missing."""

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
        if (self.venv.exists() or self.venv.is_symlink()) and not venv_belongs_to(
            self.venv, self.project, self.config.project_slug
        ):
            raise ToolError(
                f"{self.venv} exists but is not this project's environment (no editable install "
                f"of {self.project} in it, and it was not created for {self.config.project_slug})",
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
        """Where the environment is, for the set-up's summary and the doctor: the .venv folder."""
        return str(self.venv)

    def activation(self) -> str:
        """How the user activates the environment in their shell: .venv's activate script."""
        return venv_activation(".venv")

    def command(self, key: str) -> str:
        """One of the manager's commands (copier.yml's manager_commands), as the user types it:
        the tool by its full path when their PATH does not find it."""
        head, sep, rest = self.config.commands.get(key, f"make {key}").partition(" ")
        return f"{self.tool_command()}{sep}{rest}" if head == self.name else f"{head}{sep}{rest}"

    def fix_env(self) -> str:
        """The doctor's fix for a missing or incomplete environment."""
        return or_make(self.command("env"), "make env")

    def fix_lock(self) -> str:
        """The doctor's fix for a lock file out of step with the dependency files."""
        return or_make(f"{self.command('lock')}, then {self.command('env')}", "make lock env")

    def unreadable_lock(self) -> ToolError | None:
        """A TOML lock (uv.lock, poetry.lock) that is there but unreadable (a bad merge, a cut
        write): the set-up and the doctor give the same fix, which moves it aside first."""
        if self.lock_file not in ("uv.lock", "poetry.lock"):
            return None
        return corrupt_lock(self.project / self.lock_file, self.fix_lock())

    def index_setting(self) -> str:
        """Where this manager's package index is set (the fix for an unreachable one)."""
        return "`pip config set global.index-url <URL>` or PIP_INDEX_URL (pip)"

    def fix_import(self, distribution: str, version: str) -> str:
        """The doctor's fix for one installed package that does not import."""
        return f"{self.env_python()} -m pip install --force-reinstall --no-deps {distribution}=={version}"

    def cuda_fix(self, module: str) -> str:
        """The command that puts the framework's CUDA build into this environment."""
        if module == "tensorflow":
            return (
                f'{self.env_python()} -m pip install "tensorflow[and-cuda]"   (Linux and WSL2 only)'
            )
        return f"{self.env_python()} -m pip install --force-reinstall --index-url {self.config.cuda_index} torch"

    def tool_command(self) -> str:
        """How the user types this manager's tool in a new terminal."""
        found = self.tool or which(self.name, self.project)
        return command_for(self.name, found) if found else self.name

    def find(self) -> str | None:
        """This manager's tool (which()), recorded for later commands (FOUND_FILE)."""
        self.tool = which(self.name, self.project)
        if self.tool:
            remember(self.project, self.name, self.tool)
        return self.tool
