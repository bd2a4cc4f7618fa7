"""conda + Poetry: conda creates the env (Python, Poetry, the CUDA build), Poetry installs into it
(virtualenvs.create false: poetry.toml), after a dry run proves it leaves conda's packages alone."""

from __future__ import annotations

import re
from pathlib import Path

from ..conda_records import conda_owned
from ..config import canonical
from ..report import Report, last_line
from ..running import ToolError, query, run
from ._hybrid import CondaHybrid
from .poetry import INDEX_SETTING, check_lock

# How `poetry install --dry-run` lists what it would do: "  - Updating numpy (2.3.4 -> 2.3.5)";
# what it leaves alone ends in ": Skipped for the following reason: Already installed".
OPERATION = re.compile(
    r"^\s*-\s+(?:Installing|Updating|Downgrading|Removing)\s+(\S+)\s+\(([^)]*)\)(?!: Skipped)",
    re.MULTILINE,
)


class CondaPoetryManager(CondaHybrid):
    """conda for the env, Poetry for the Python packages (into the same prefix)."""

    name = "conda-poetry"
    index_setting = INDEX_SETTING
    lock_args = ("lock", "--no-interaction", "--no-ansi")
    pins_lock = True

    def install_python_side(self, prefix: Path) -> str:
        """`poetry install` into the conda env (`poetry lock` first when there is no
        poetry.lock); ToolError, before anything is installed, when its dry run would
        replace a package conda installed."""
        assert self.py_tool is not None
        env = self.python_env(prefix)
        fix = (
            "check the dependencies and [[tool.poetry.source]] in pyproject.toml; if poetry.lock "
            "is out of date, run `make lock`"
        )
        if not (self.project / "poetry.lock").exists():
            run([self.py_tool, *self.lock_args], self.project, env=env, fix=fix)
        # Poetry cannot be told to leave a package alone: see first what it would touch.
        plan = run(
            [self.py_tool, "install", "--dry-run", "--no-interaction", "--no-ansi"],
            self.project,
            env=env,
            fix=fix,
            echo=False,
        )
        clash = {
            name: change.split("->")[-1].strip()
            for name, change in OPERATION.findall(plan)
            if canonical(name) in self.conda_before
        }
        if clash:
            slug = self.config.project_slug
            wanted = " ".join(f"{name}={version}" for name, version in clash.items())
            raise ToolError(
                "poetry install would replace packages conda installed: "
                + ", ".join(
                    f"{self.conda_before[canonical(n)].version} -> {v} of {n}"
                    for n, v in clash.items()
                ),
                why="poetry.lock pins other versions of them than conda installed; Poetry would "
                "put PyPI copies over conda's",
                fix=f"have conda install the versions poetry.lock pins: conda install -n {slug} "
                f"-c conda-forge {wanted}   (then run the command below)",
            )
        run([self.py_tool, "install", "--no-interaction", "--no-ansi"], self.project, env=env,
            fix=fix)  # fmt: skip
        return f"poetry install installed the project, its dependencies and dev group into {prefix}"

    def python_side_check(self, report: Report, poetry: str, prefix: Path) -> None:
        """The doctor's Poetry half: `poetry check --lock`, then what a dry-run `poetry install`
        would change among the packages conda does not own."""
        env = self.python_env(prefix)
        if not check_lock(report, poetry, self.project, self.fix_lock(), env):
            return
        plan = [poetry, "install", "--dry-run", "--no-interaction", "--no-ansi"]
        code, out, err = query(plan, self.project, env=env)
        owned = conda_owned(prefix)
        pending = [f"{n} ({c})" for n, c in OPERATION.findall(out) if canonical(n) not in owned]
        if code:
            report.problem(
                f"poetry install --dry-run failed: {last_line(out + err)}", self.fix_env()
            )
        elif pending:
            report.problem(
                f"the environment differs from poetry.lock: {', '.join(pending)}", self.fix_env()
            )
        else:
            report.ok(
                "Poetry's packages match poetry.lock (poetry install --dry-run: nothing to do)"
            )


MANAGER = CondaPoetryManager
