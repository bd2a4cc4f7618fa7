"""The template repository's own Python (the environment tool, staff scripts, bench, the copier
extension) is typed and ruff-clean: mypy on the oldest and newest Python the tool supports, and
ruff's lint and format check over the repository."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("python", ["3.10", "3.14"])
def test_our_python_type_checks(python: str) -> None:
    """`mypy` as a developer and CI run it: its files and flags are pyproject.toml's [tool.mypy]."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-version", python, "--no-incremental"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in" in proc.stdout


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]])
def test_the_repository_is_ruff_clean(check: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *check, "."], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
