"""The README's two commands work as written; each manager's project passes its own ruff + pytest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, posix_only, render, tomllib, venv_python

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


def new_user_env(home: Path) -> dict[str, str]:
    """A new user's shell environment: a fresh HOME, and only the system's PATH (no dev venv,
    so no uv or poetry on it; uv comes from the README's command)."""
    env = {**os.environ, "HOME": str(home), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(Path(sys.prefix)))
    )
    return env


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    """Run the README's generate command in a shell, with only the template URL pointed at a
    local copy (GitHub is unreachable here) and --defaults added; HOME is a fresh folder."""
    tmp_path = tmp_path_factory.mktemp("readme")
    src = git_snapshot(tmp_path / "copier-mlops")
    command = readme_command("generate-command")
    assert TEMPLATE_URL in command
    command = command.replace(TEMPLATE_URL, str(src)).replace(
        "copier copy", "copier copy --defaults"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = new_user_env(home)
    assert shutil.which("uv", path=env["PATH"]) is None, "this test needs a PATH without uv"
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return work / "my-ml-project", out, env


@pytest.mark.slow
@posix_only("the README's generate command for a POSIX shell (Windows gets it in prose)")
def test_readme_generate_command_as_written(generated: tuple[Path, str, dict[str, str]]) -> None:
    project, out, _ = generated
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
        "Add the lock file written by the environment tool",
        "Initial commit from the copier-mlops template",
    ]
    # A clean tree: `copier update` (which refuses a dirty one) works straight away.
    status = subprocess.run(
        [*git, "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    assert status.stdout == ""


def printed_next_steps(out: str) -> tuple[list[str], str]:
    """The commands of copier's after-copy "Next:" block, and its PATH advice line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Next:")
    block = lines[
        start + 1 : next(i for i in range(start, len(lines)) if "README.md explains" in lines[i])
    ]
    commands = [line.strip() for line in block if line.startswith("  ")]
    advice = next((line for line in block if "is not on your PATH" in line), "")
    return commands, advice


def summary_commands(out: str) -> list[str]:
    """Every command the hook's summary gives: `run tests:` and `rebuild:`, each alternative."""
    found = []
    for label in ("run tests:", "rebuild:"):
        line = next(line for line in out.splitlines() if line.strip().startswith(label))
        text = line.split(label, 1)[1]
        main, _, alt = text.partition("(or:")
        found += [main.strip(), alt.rstrip(") ").strip()]
    return found


def in_fresh_shell(
    script: str, env: dict[str, str], cwd: Path, login: bool = False
) -> tuple[int, str]:
    args = ["bash", "-i", "-c", script] if login else ["bash", "-c", script]
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
@posix_only("the printed next steps run in bash; Windows shells are not available here")
def test_every_printed_next_step_works_in_a_new_terminal(
    generated: tuple[Path, str, dict[str, str]],
) -> None:
    """The Done-when of issue 12: after the README's command (uv not on PATH), each step the
    output gives runs, as printed, in a new shell with a new user's PATH."""
    project, out, env = generated
    work = project.parent
    commands, advice = printed_next_steps(out)
    assert commands[0].startswith("cd "), commands
    assert len(commands) == 3, commands
    # The after-copy block, typed line by line into one new terminal.
    code, text = in_fresh_shell("set -e\n" + "\n".join(commands), env, work)
    assert code == 0, text[-4000:]
    assert "passed" in text
    cd = commands[0]
    # The hook's summary (run tests, rebuild), and the generated README's make targets.
    # Each distinct command once: the summary's `make test` is the README's too, and its test
    # command the after-copy block's, which ran above.
    steps = dict.fromkeys(
        [*summary_commands(out), "make test", "make lint", "make doctor", "make lock"]
    )
    typed = [c.split("   # ")[0] for c in commands]  # without the block's comments
    ran = [step for step in steps if step in typed]
    assert ran, (commands, list(steps))  # the block's test command is the summary's
    for step in ran:
        del steps[step]
    for step in steps:
        code, text = in_fresh_shell(f"{cd} && {step}", env, work)
        assert code == 0, f"{step}: {text[-4000:]}"
    # The one PATH line for the user's shell (bash here): afterwards `uv` works in new terminals.
    assert advice, out[-3000:]
    line = advice.split("run once: ", 1)[1]
    code, text = in_fresh_shell(line, env, work)
    assert code == 0, text
    # (The project's tests have passed above: here, uv itself is found and runs the project.)
    check = (
        f"{cd} && uv run python -c 'import my_ml_project; print(\"found\")' && python3 --version"
    )
    code, text = in_fresh_shell(check, env, work, True)
    assert code == 0 and "found" in text, text[-4000:]
    # The system's python3 still comes first (the install folder is appended, not prepended).
    code, text = in_fresh_shell("command -v python3", env, work, True)
    assert ".copier-mlops" not in text, text


# One combination per manager; conda cannot be installed here, so its project (and a hybrid's)
# is installed with pip into a throwaway venv from the same pyproject.toml. The MNIST starter's
# suite with scikit-learn runs in the environments the managers make themselves (test_setup's
# venv and Poetry projects, test_mnist's uv and venv ones, test_presets' conda + Poetry one);
# here it runs for conda, whose environment.yml no test can install.
PER_MANAGER = [
    {"env_manager": "venv", "ml_framework": "sklearn", "example": "none"},
    {"env_manager": "uv", "ml_framework": "none", "example": "none"},
    {"env_manager": "poetry", "ml_framework": "sklearn", "example": "none"},
    {"env_manager": "conda", "ml_framework": "none", "example": "mnist"},
    {"env_manager": "conda-poetry", "ml_framework": "sklearn", "example": "none"},
    {"env_manager": "conda-uv", "ml_framework": "none", "example": "none"},
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
    # The project and its own dev requirements (pytest, ruff, httpx for the API's tests...);
    # uv pip reads the same indexes pip is configured with (find-links included) via the env.
    pyproject = tomllib.loads((dst / "pyproject.toml").read_text(encoding="utf-8"))
    poetry_dev = pyproject.get("tool", {}).get("poetry", {}).get("group", {}).get("dev", {})
    dev = pyproject.get("dependency-groups", {}).get("dev") or [
        f"{name}{spec}" for name, spec in poetry_dev.get("dependencies", {}).items()
    ]
    assert {"pytest", "ruff"} <= {re.split(r"[<>=!~ ]", d)[0] for d in dev}, dev
    subprocess.run([uv, "pip", "install", "-q", "--python", py, "-e", str(dst), *dev],
                   check=True, env=env)  # fmt: skip
    for cmd in (["-m", "ruff", "check", "."], ["-m", "ruff", "format", "--check", "."],
                ["-m", "pytest", "-q", "-p", "no:cacheprovider"]):  # fmt: skip
        proc = subprocess.run([py, *cmd], cwd=dst, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout[-3000:]}{proc.stderr[-2000:]}"
