"""Poetry: in-project .venv (poetry.toml), `poetry env use`, `poetry install` writes poetry.lock."""

from __future__ import annotations

from ..base import (
    HookError,
    Manager,
    capture,
    clean_env,
    run,
    venv_activation,
    which,
)
from ..discovery import require_python

INSTALL_POETRY = (
    "install Poetry 2 (`pipx install poetry`, or see https://python-poetry.org/docs/#installation)"
)
# An active conda env would be used by Poetry instead of the project's .venv.
POETRY_ENV_DROP = ("CONDA_PREFIX", "CONDA_DEFAULT_ENV")


class PoetryManager(Manager):
    name = "poetry"
    lock_file = "poetry.lock"

    def _env(self) -> dict[str, str]:
        return clean_env({"POETRY_VIRTUALENVS_IN_PROJECT": "true"}, drop=POETRY_ENV_DROP)

    def find_tool(self) -> str:
        self.tool = which("poetry")
        if not self.tool:
            raise HookError("Poetry is not installed (not found on PATH)", fix=INSTALL_POETRY)
        version = (capture([self.tool, "--version", "--no-ansi"]) or "").strip()
        return f"{version or 'poetry'} at {self.tool}"

    def find_interpreter(self) -> str:
        want = self.config.python_version
        found = require_python(want)
        self.interpreter = found.python
        return f"Python {found.full_version} at {found.python}"

    def create(self) -> str:
        assert self.tool is not None and self.interpreter is not None
        self.claim_venv()
        run(
            [self.tool, "env", "use", "--no-interaction", "--no-ansi", self.interpreter],
            self.project,
            env=self._env(),
        )
        return "Poetry's environment is .venv (poetry.toml keeps it in the project)"

    def install(self) -> str:
        assert self.tool is not None
        run(
            [self.tool, "install", "--no-interaction", "--no-ansi"],
            self.project,
            env=self._env(),
            fix="check the dependencies and [[tool.poetry.source]] in pyproject.toml; "
            "if poetry.lock is out of date, run `poetry lock`",
        )
        return "poetry install installed the project, its dependencies and the dev group"

    def lock(self) -> str:
        assert self.tool is not None
        if not (self.project / "poetry.lock").exists():
            run([self.tool, "lock", "--no-interaction", "--no-ansi"], self.project, env=self._env())
        return "poetry.lock written by poetry install"

    def check_command(self) -> list[str]:
        py = self.env_python()
        if capture([py, "-c", "import pip"]) is not None:
            return [str(py), "-m", "pip", "check", "--disable-pip-version-check"]
        assert self.tool is not None
        return [self.tool, "check", "--lock", "--no-ansi"]

    def location(self) -> str:
        return str(self.project / ".venv")

    def activation(self) -> str:
        poetry = self.tool_command()
        return venv_activation(".venv") + f"   (or: `{poetry} run <command>` without activating)"

    def test_command(self) -> str:
        return f"{self.tool_command()} run pytest   (or: make test)"

    def alternatives(self) -> list[str]:
        return ["venv"]
