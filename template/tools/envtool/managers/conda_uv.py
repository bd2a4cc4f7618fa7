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
    python_tool = "uv"
    python_lock = "uv.lock"
    lock_args = ("lock",)

    def python_env(self, prefix: Path) -> dict[str, str]:
        """What `conda activate` sets, plus UV_PROJECT_ENVIRONMENT: uv's project env is the
        conda prefix."""
        # The conda prefix is uv's project environment: never a .venv beside it (uv #7829).
        return {**super().python_env(prefix), "UV_PROJECT_ENVIRONMENT": str(prefix)}

    def sync_args(self) -> list[str]:
        """--inexact: never prune what uv did not install (conda's packages, uv PR #6834);
        --no-install-package: leave every distribution conda installed as it is, even where
        uv.lock pins another version of it (numpy under pandas, say)."""
        args = ["sync", "--inexact", "--no-python-downloads"]
        for name in sorted(self.conda_before):
            args += ["--no-install-package", name]
        return args

    def install_python_side(self, prefix: Path) -> str:
        """`uv sync --inexact` into the conda prefix, leaving every package conda
        installed as it is; the note for the log."""
        assert self.py_tool is not None
        run(
            [self.py_tool, *self.sync_args()],
            self.project,
            env=self.python_env(prefix),
            fix="check the package names and versions in pyproject.toml ([project] dependencies)",
        )
        return f"uv sync installed the project (editable) and its dependencies into {prefix}"

    def index_setting(self) -> str:
        """uv's index setting: pyproject.toml's [[tool.uv.index]], or UV_DEFAULT_INDEX."""
        return INDEX_SETTING

    def python_side_check(self, report: Report, uv: str, prefix: Path) -> None:
        """The doctor's uv half: `uv lock --check`, then `uv sync --locked --dry-run`
        with the packages the env's conda records own left out."""
        self.conda_before = conda_owned(prefix)
        dry_run = [uv, *self.sync_args(), "--locked", "--dry-run"]
        check_lock_and_sync(report, self, uv, dry_run, self.python_env(prefix))


MANAGER = CondaUvManager
