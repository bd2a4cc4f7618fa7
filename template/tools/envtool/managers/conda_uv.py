"""conda + uv: conda creates the env (Python, uv, the CUDA build), uv installs into its prefix."""

from __future__ import annotations

from pathlib import Path

from ..conda_records import conda_owned
from ..report import Report
from ..running import run
from ._hybrid import CondaHybrid
from .uv import INDEX_SETTING, check_lock_and_sync


class CondaUvManager(CondaHybrid):
    """conda for the env, uv for the Python packages (into the same prefix)."""

    name = "conda-uv"
    index_setting = INDEX_SETTING
    lock_args = ("lock",)

    def sync_args(self, prefix: Path) -> list[str]:
        """`uv sync --inexact` (never prune what uv did not install: conda's packages, uv PR
        #6834), leaving every distribution conda installed as it is (keep_conda)."""
        return ["sync", "--inexact", "--no-python-downloads", *self.keep(prefix)[0]]

    def install_python_side(self, prefix: Path) -> str:
        """`uv sync --inexact` into the conda prefix, leaving every package conda
        installed as it is; the note for the log."""
        assert self.py_tool is not None
        run(
            [self.py_tool, *self.sync_args(prefix)],
            self.project,
            env=self.python_env(prefix),
            fix="check the package names and versions in pyproject.toml ([project] dependencies)",
        )
        return f"uv sync installed the project (editable) and its dependencies into {prefix}"

    def python_side_check(self, report: Report, uv: str, prefix: Path) -> None:
        """The doctor's uv half: `uv lock --check`, then `uv sync --locked --dry-run`
        with the packages the env's conda records own left out."""
        self.conda_before = conda_owned(prefix)
        dry_run = [uv, *self.sync_args(prefix), "--locked", "--dry-run"]
        check_lock_and_sync(report, self, uv, dry_run, self.python_env(prefix))


MANAGER = CondaUvManager
