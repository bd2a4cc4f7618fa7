"""Poetry: in-project .venv (poetry.toml), `poetry env use`, `poetry install` writes poetry.lock."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..manager import Manager
from ..pins import compare_with_lock
from ..probe import ProbeReport
from ..report import Report, last_line, lock_readable
from ..running import clean_env, query, run
from ..shell import venv_activation


def check_lock(
    report: Report, poetry: str, project: Path, fix: str, env: Mapping[str, str] | None = None
) -> bool:
    """The doctor's `poetry check --lock`: True when poetry.lock matches pyproject.toml."""
    code, out, err = query([poetry, "check", "--lock", "--no-ansi"], project, env=env)
    if code:
        report.problem(
            f"poetry.lock is out of date with pyproject.toml: {last_line(out + err)}", fix
        )
        return False
    report.ok("poetry.lock matches pyproject.toml (poetry check --lock)")
    return True


# An active conda env would be used by Poetry instead of the project's .venv.
POETRY_ENV_DROP = ("CONDA_PREFIX", "CONDA_DEFAULT_ENV")
# Where the package index is set (also conda-poetry's).
INDEX_SETTING = (
    "pyproject.toml's [[tool.poetry.source]] (priority = \"primary\"; copier's "
    "package_index_url answer writes it), then `poetry lock` (Poetry)"
)


class PoetryManager(Manager):
    """Poetry with an in-project .venv; poetry.lock."""

    name, title = "poetry", "Poetry"
    tool_install = "install Poetry 2 (`pipx install poetry`, or see https://python-poetry.org/docs/#installation)"
    version_args = ("--version", "--no-ansi")
    index_setting = INDEX_SETTING
    alternatives = ("venv",)
    lock_file = "poetry.lock"
    lock_args = ("lock", "--no-interaction", "--no-ansi")
    pins_lock = True

    def tool_env(self) -> dict[str, str]:
        """The clean environment, with POETRY_VIRTUALENVS_IN_PROJECT=true and no active conda
        env (Poetry would install into it instead of .venv)."""
        return clean_env({"POETRY_VIRTUALENVS_IN_PROJECT": "true"}, drop=POETRY_ENV_DROP)

    def find_interpreter(self) -> str:
        """Find a Python of python_version for `poetry env use` (require_python);
        ToolError naming the versions found when there is none."""
        want = self.config.python_version
        from ..discovery import require_python  # not in conda-poetry projects, which need none

        self.interpreter, version = require_python(want)
        return f"Python {version} at {self.interpreter}"

    def create(self) -> str:
        """`poetry env use` the found Python, which makes the project's .venv (after claim_venv)."""
        assert self.tool is not None and self.interpreter is not None
        self.claim_venv()
        run(
            [self.tool, "env", "use", "--no-interaction", "--no-ansi", self.interpreter],
            self.project,
            env=self.tool_env(),
        )
        return "Poetry's environment is .venv (poetry.toml keeps it in the project)"

    def install(self) -> str:
        """`poetry install`: the project, its dependencies and the dev group into .venv."""
        assert self.tool is not None
        run(
            [self.tool, "install", "--no-interaction", "--no-ansi"],
            self.project,
            env=self.tool_env(),
            fix="check the dependencies and [[tool.poetry.source]] in pyproject.toml; "
            "if poetry.lock is out of date, run `poetry lock`",
        )
        return "poetry install installed the project, its dependencies and the dev group"

    def activation(self) -> str:
        """.venv's activate script, or `poetry run <command>` without activating."""
        poetry = self.tool_command()
        return venv_activation(".venv") + f"   (or: `{poetry} run <command>` without activating)"

    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """The doctor's poetry.lock checks: there and readable, `poetry check --lock`, then
        the installed versions against its pins (when the probe ran)."""
        report.section("Lock file (poetry.lock)")
        if not lock_readable(report, self.project / "poetry.lock", self.fix_lock()):
            return
        poetry = self.doctor_tool(report)
        if poetry and not check_lock(report, poetry, self.project, self.fix_lock()):
            return
        if found is not None:
            compare_with_lock(
                report, found, self.config.project_slug, exact=False, fix=self.fix_env()
            )


MANAGER = PoetryManager
