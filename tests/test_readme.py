"""The README's two commands work as written; each manager's project passes its own ruff + pytest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, posix_only, render, venv_python

README = (ROOT / "README.md").read_text(encoding="utf-8")
TEMPLATE_URL = "gh:copier-mlops/copier-mlops"


def readme_command(marker: str) -> str:
    """The bash block right after `<!-- marker -->` in the README."""
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", README, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_command("test-command") in ci.splitlines()


def git_snapshot(dst: Path) -> Path:
    """The working tree as a fresh git repository (what a user clones), uncommitted edits included:
    tracked and untracked files, minus what .gitignore excludes."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_symlink() or src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel, follow_symlinks=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(dst)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    return dst


@pytest.mark.slow
@posix_only("the README's generate command for a POSIX shell (Windows gets it in prose)")
def test_readme_generate_command_as_written(tmp_path: Path) -> None:
    """Run the README's generate command in a shell, with only the template URL pointed at a
    local copy (GitHub is unreachable here) and --defaults added; HOME is a fresh folder."""
    src = git_snapshot(tmp_path / "copier-mlops")
    command = readme_command("generate-command")
    assert TEMPLATE_URL in command
    command = command.replace(TEMPLATE_URL, str(src)).replace(
        "copier copy", "copier copy --defaults"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    # Only the system Python on PATH, as on a fresh machine: no dev venv, so uv comes from the command.
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(Path(sys.prefix)))
    )
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    project = work / "my-ml-project"
    assert (project / "pyproject.toml").is_file()
    assert (project / "uv.lock").is_file(), out[-4000:]
    python = project / ".venv" / "bin" / "python"
    check = subprocess.run(
        [str(python), "-c", "import my_ml_project, sklearn, numpy; print('ok')"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.stdout.strip() == "ok", check.stderr
    git = ["git", "-C", str(project)]
    log = subprocess.run([*git, "log", "--format=%s"], capture_output=True, text=True, check=True)
    assert log.stdout.splitlines() == [
        "Add the lock file written by the environment hook",
        "Initial commit from the copier-mlops template",
    ]
    # A clean tree: `copier update` (which refuses a dirty one) works straight away.
    status = subprocess.run(
        [*git, "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    assert status.stdout == ""


# One combination per manager; conda cannot be installed here, so its project is installed with
# pip into a throwaway venv from the same pyproject.toml (the dependencies are identical).
PER_MANAGER = [
    {"env_manager": "venv", "ml_framework": "sklearn", "example": "mnist"},
    {"env_manager": "uv", "ml_framework": "none", "example": "none"},
    {"env_manager": "poetry", "ml_framework": "sklearn", "example": "none"},
    {"env_manager": "conda", "ml_framework": "none", "example": "mnist"},
]


@pytest.mark.slow
@pytest.mark.parametrize("answers", PER_MANAGER, ids=lambda a: a["env_manager"])
def test_generated_project_passes_its_own_ruff_and_pytest(
    template: Path, tmp_path: Path, answers: dict[str, str]
) -> None:
    dst = render(template, tmp_path / "proj", python_version="3.11", **answers)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(tmp_path / "venv")}
    subprocess.run(
        [uv, "venv", "-q", "--python", "3.11", str(tmp_path / "venv")], check=True, env=env
    )
    py = str(venv_python(tmp_path / "venv"))
    # uv pip reads the same indexes pip is configured with (find-links included) via the env.
    subprocess.run([uv, "pip", "install", "-q", "--python", py, "-e", str(dst), "pytest", "ruff"],
                   check=True, env=env)  # fmt: skip
    for cmd in (["-m", "ruff", "check", "."], ["-m", "ruff", "format", "--check", "."],
                ["-m", "pytest", "-q", "-p", "no:cacheprovider"]):  # fmt: skip
        proc = subprocess.run([py, *cmd], cwd=dst, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout[-3000:]}{proc.stderr[-2000:]}"
