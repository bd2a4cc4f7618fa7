"""The one copy of each test helper: render the template (copier's API) or copy it (copier's CLI,
timed), run a command, an environment without the dev venv, find a Python, the index pip uses,
and conda's recording stand-in (tests/conda_standin.py, NOT conda) on PATH."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock
import pytest
import yaml
from copier import run_copy

# Re-exported: the tool's own rule for a venv's python (bin/python, or Scripts/python.exe).
from envtool import discovery
from envtool.config import Config
from envtool.manager import Manager, manager_for
from envtool.managers import venv as venv_manager
from envtool.shell import venv_python as venv_python

from devsupport import copier_config, manager_choices, pip_index_url, read_result
from extensions.context import render_context
from staff.check import byte_compile

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "pip_index_url",
    "read_result",
    "tomllib",
    "venv_python",
]  # the tests import them from here

ROOT = Path(__file__).resolve().parents[1]
DEV_BIN = Path(sys.executable).parent  # the test venv's bin/ (Scripts/ on Windows)
WINDOWS = sys.platform == "win32"


def program(folder: Path, name: str) -> str:
    """`folder`'s program `name` (name.exe on Windows: a path needs the suffix there)."""
    return str(folder / (f"{name}.exe" if WINDOWS else name))


def dev_tool(name: str) -> str:
    """The test venv's program `name` (copier, uv, ruff...)."""
    return program(DEV_BIN, name)


COPIER = dev_tool("copier")
TIMES: dict[str, float] = {}  # what each timed command took, printed at the end (-s or -rA)
TOOL = ROOT / "template" / "tools" / "envtool"  # the environment tool, copied into each project
COPIER_YML = copier_config()
MANAGERS = manager_choices()  # copier.yml's env_manager choices: the one list of managers

# What the tests start runs as on a user's machine, two settings aside for speed. This machine's
# environment sets PYTHONDONTWRITEBYTECODE, which a user's does not: every process would compile
# what it imports again (`import mlflow` in a uv-made venv: 7.7 s, 2.7 s once compiled). And
# the generated projects' mypy shares one cache per worker (shared_mypy_cache): numpy, torch,
# mlflow... are analysed once, not in each new project (default project: 36 s, 5.5 s shared).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Answers that keep a render side-effect free: no environment, no git repository.
QUIET = {"create_env": False, "git_init": False}


def posix_only(needs: str) -> pytest.MarkDecorator:
    """Skip on Windows a test that needs `needs`, which only POSIX systems have."""
    return pytest.mark.skipif(WINDOWS, reason=f"{needs}: POSIX only, not on Windows")


def link_dev_tool(bin_dir: Path, tool: str) -> None:
    """Link the test venv's `tool` (uv, poetry) into `bin_dir`, to put just that tool on PATH."""
    target = Path(dev_tool(tool))
    link = bin_dir / target.name
    if link.is_symlink() and link.readlink() == target:
        return
    # Replaced atomically: a link left by another checkout (stale, or dangling once that
    # checkout is gone) is swapped for this one's, even with test workers doing it at once.
    staged = bin_dir / f".{target.name}.{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(target)
    os.replace(staged, link)


def render(template: Path, dst: Path, **answers: Any) -> Path:
    """Render `template` into `dst` with `answers` on top of the defaults (hook and git off)."""
    run_copy(
        str(template),
        dst,
        data={**QUIET, **answers},
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    return dst


# The project most slow tests generate: the course's "Digit Lab" (package digit_lab), on Python
# 3.11 (the CPU torch wheel here is for 3.11), without a Jupyter kernel (fewer packages).
DIGIT_LAB: dict[str, Any] = {
    "project_name": "Digit Lab",
    "python_version": "3.11",
    "jupyter_kernel": False,
}
PKG = "digit_lab"
API_TESTS = 33  # the generated MNIST project's API tests (tests/test_<package>_api.py)

# The CPU torch wheel in pip's find-links (the index's torch is a CUDA build; macOS has no +cpu).
TORCH_CPU = "2.13.0" if sys.platform == "darwin" else "2.13.0+cpu"


def api_tests_passed(output: str) -> int:
    """How many API tests a project's `pytest -rA` output lists as passed."""
    return len(re.findall(rf"^PASSED tests/test_{PKG}_api\.py::", output, re.M))


def digit_lab(template: Path, dst: Path, **answers: Any) -> Path:
    """render() of DIGIT_LAB, `answers` on top."""
    return render(template, dst, **{**DIGIT_LAB, **answers})


def requirements_installed(
    dst: Path, python: str, env: dict[str, str], label: str
) -> tuple[Path, dict[str, str]]:
    """`dst` with a .venv made by `python` holding its requirements-dev.txt, installed by uv's pip:
    the files pip reads, minutes faster (pip itself is the set-up's: test_setup, test_gpu_check).
    PyTorch is pinned to TORCH_CPU. Where pip's find-links holds that wheel (this machine), the
    PyTorch index that requirements.txt names is unreachable and uv, unlike pip, stops at it: the
    same files are read from copies without that line, the wheel's folder in its place."""
    run_ok(f"{label}: venv", [python, "-m", "venv", ".venv"], dst, env)
    constraints = dst.parent / "constraints.txt"
    constraints.write_text(f"torch=={TORCH_CPU}\n", encoding="utf-8")
    requirements = dst / "requirements-dev.txt"
    runtime = (dst / "requirements.txt").read_text(encoding="utf-8")
    links = os.environ.get("PIP_FIND_LINKS", "")
    extra: list[str] = []
    if "download.pytorch.org" in runtime and links and list(Path(links).glob("torch-*.whl")):
        local = dst.parent / "requirements-local"
        local.mkdir(exist_ok=True)
        lines = [x for x in runtime.splitlines() if not x.startswith("--extra-index-url")]
        (local / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        dev = requirements.read_text(encoding="utf-8").replace("\n-e .\n", f"\n-e {dst}\n")
        assert f"-e {dst}" in dev, dev  # the project itself, from its own folder
        requirements = local / "requirements-dev.txt"
        requirements.write_text(dev, encoding="utf-8")
        extra = ["--find-links", links]
    py = str(venv_python(dst / ".venv"))
    install = [dev_tool("uv"), "pip", "install", "-q", "--python", py, "-c", str(constraints)]
    run_ok(label, [*install, *extra, "-r", str(requirements)], dst, env)
    return dst, env


def skeleton_tests_pass(
    template: Path, env_project: Path, env: dict[str, str], framework: str
) -> tuple[Path, dict[str, str]]:
    """example=none with `framework` (and MLflow), rendered beside `env_project`: the skeleton's
    own tests pass in that project's environment (the same packages), its src/ first on the path.
    Returns the skeleton and that environment."""
    dst = digit_lab(
        template,
        env_project.parent / f"{framework}-skeleton",
        ml_framework=framework,
        example="none",
        experiment_tracking="mlflow",
    )
    run_env = {**env, "PYTHONPATH": str(dst / "src"), "MYPYPATH": str(dst / "src")}
    py = venv_python(env_project / ".venv")
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/test_{PKG}_skeleton.py"]
    out = run_ok(f"{framework} skeleton pytest", cmd, dst, run_env).stdout
    last = out.strip().splitlines()[-1]
    assert " 4 passed" in f" {last}" and "failed" not in last and "error" not in last, out[-3000:]
    return dst, run_env


def run_captured(
    cmd: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` with no stdin (nothing may wait for a prompt), its output captured as UTF-8
    text; the exit status is left to the test."""
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        check=False,
    )


def question_drawn(seen: bytes, since: int) -> bool:
    """Whether a question of copier's (prompt_toolkit) was drawn after output offset `since` and
    still waits: it turns bracketed paste on as it starts and off as it ends, and each drawing
    ends by turning line wrap back on. Answering then, not after half a second of quiet, saves
    most of a pty test."""
    start = seen.rfind(b"\x1b[?2004h")
    live = start >= since and start > seen.rfind(b"\x1b[?2004l")
    return live and seen.rfind(b"\x1b[?7h") > max(start, seen.rfind(b"\x1b[?7l"))


def pty_run(
    args: Sequence[str | os.PathLike[str]],
    reply: Callable[[bytes], bytes | None],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
) -> tuple[int, str]:
    """Run `args` on a pseudo-terminal, as a user at a keyboard: whenever a prompt waits for a
    key, type reply(all output so far) unless it is None. A prompt waits when a question has been
    drawn since the last key (see `question_drawn`), or else when the output has been quiet for
    half a second. Returns the exit status (killed at `timeout`) and the output."""
    import fcntl
    import select
    import struct
    import termios

    rows, columns = 50, 200
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(
        [str(a) for a in args],
        cwd=cwd,
        env={**(os.environ if env is None else env), "TERM": "xterm"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    seen, last, deadline = b"", time.monotonic(), time.monotonic() + timeout
    typed_at = 0  # len(seen) when the last key was typed
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                seen, last = seen + chunk, time.monotonic()
                # A real terminal answers "where is the cursor?" (prompt_toolkit asks before a
                # question and stalls on its keys until answered): the bottom row, as in a
                # terminal with some history.
                asked = seen.count(b"\x1b[6n", max(0, len(seen) - len(chunk) - 3))
                os.write(master, f"\x1b[{rows};1R".encode() * asked)
            elif proc.poll() is not None:
                break
            elif question_drawn(seen, typed_at) or time.monotonic() - last > 0.5:
                keys = reply(seen)
                if keys is not None:
                    os.write(master, keys)
                    typed_at = len(seen)
                last = time.monotonic()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), seen.decode("utf-8", "replace")


def timed(
    label: str, cmd: Sequence[str | os.PathLike[str]], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """run_captured, its duration added to TIMES[label] (reported at the end of the session)."""
    t0 = time.monotonic()
    proc = run_captured(cmd, **kwargs)
    TIMES[label] = TIMES.get(label, 0.0) + time.monotonic() - t0
    return proc


def run_ok(
    label: str, cmd: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """timed, and the test fails (with the end of both outputs) unless `cmd` exits 0."""
    proc = timed(label, cmd, cwd=cwd, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")  # fmt: skip
    return proc


@pytest.fixture(scope="session", autouse=True)
def shared_mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One mypy cache for this worker's session (see PYTHONDONTWRITEBYTECODE above)."""
    os.environ["MYPY_CACHE_DIR"] = str(tmp_path_factory.mktemp("mypy-cache"))


@pytest.fixture(scope="session", autouse=True)
def report_times() -> Iterator[None]:
    yield
    for label, seconds in TIMES.items():
        print(f"[time] {label}: {seconds:.1f}s")


# pyproject.toml runs --dist loadfile (see there why not loadgroup): a file stays on one worker,
# so its module fixtures are built once. Files are handed out in collection order: the files with
# most test time first, as measured (seconds over both workers, `.ci/run` on 2026-12-07): mnist
# 530, docker 422, staff 356, serving 355, setup 282, tracking 265, firstrun 217, readme 200,
# bench 153, render 135, hybrid 134, validators 133, dvc 125, presets 88, update 67, gpu_check
# 59; the others after them. Handed out in this order, the short files fill in at the end
# instead of one long file running alone.
LONGEST_FIRST = (
    "test_mnist", "test_docker", "test_staff", "test_serving", "test_setup", "test_tracking",
    "test_firstrun", "test_readme", "test_bench", "test_render", "test_hybrid", "test_validators",
    "test_dvc", "test_presets", "test_update", "test_gpu_check",
)  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before xdist reads the order
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = item.path.stem
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order


def bundled_pip(python: str | Path) -> tuple[str, bool]:
    """The pip that `python` puts in a new venv (ensurepip's), and whether the venv set-up
    upgrades it first (older than PIP_FLOOR)."""
    code = "import ensurepip; print(ensurepip.version())"
    pip = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    version = pip.stdout.strip()
    return version, int(version.split(".")[0]) < venv_manager.PIP_FLOOR


@functools.cache
def find_python(version: str) -> str | None:
    """An interpreter of `version` ("3.12"), found as the tool finds one (PATH, pyenv's
    versions folder, Windows' py launcher), or None."""
    found = discovery.find_python(version).python
    return str(found) if found else None


def tool_bin(tmp: Path, *tools: str) -> Path:
    """A folder with just the named dev-venv tools (uv, poetry), to put on PATH."""
    bin_dir = tmp / ("bin-" + "-".join(tools or ("none",)))
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        link_dev_tool(bin_dir, tool)
    return bin_dir


def env_without_dev_venv(bin_dir: Path | None, **extra: str) -> dict[str, str]:
    """The caller's environment without the dev venv (its uv/poetry/python must not leak in),
    with `bin_dir` (see tool_bin) first on PATH; no Python downloads, no keyring prompt, and
    Jupyter kernels in a temp folder unless `extra` says where."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != DEV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(([str(bin_dir)] if bin_dir else []) + path)
    env.update(
        UV_PYTHON_DOWNLOADS="never",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",  # poetry: no keyring prompt
        JUPYTER_DATA_DIR=str(Path(tempfile.gettempdir()) / "copier-mlops-test-jupyter"),
    )
    env.update(extra)
    return env


@functools.cache
def launcher() -> Path:
    """A Python that imports copier (the dev venv's packages, through a .pth file) but has no
    uv or poetry beside it. The tool also looks for tools beside the Python running copier (where
    the README's command installs uv), so with the dev venv's own Python the tests could not
    hide a tool: with this one, PATH alone decides, as each test sets it."""
    home = Path(tempfile.mkdtemp(prefix="copier-launcher-"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    site = next(home.glob("lib/python*/site-packages"), home / "Lib" / "site-packages")  # Windows
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv_python(home)


def copier_cli() -> list[str]:
    return [str(launcher()), "-m", "copier"]


def copier_copy(
    src: Path, dst: Path, env: dict[str, str], cwd: Path | None = None, **answers: str
) -> subprocess.CompletedProcess[str]:
    """`copier copy --trust --defaults` with the real CLI (tasks run), timed, output printed."""
    args = [*copier_cli(), "copy", "--trust", "--defaults"]
    for key, value in answers.items():
        args += ["--data", f"{key}={value}"]
    proc = timed(f"copier copy [{dst.name}]", [*args, src, dst], cwd=cwd, env=env)
    print(proc.stdout[-6000:], proc.stderr[-6000:], sep="\n")
    return proc


def copier_run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Any other copier command (update, copy with --vcs-ref, ...), output printed."""
    proc = run_captured([*copier_cli(), *args], cwd=cwd, env=env)
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return proc


def project_tests_pass(project: Path, env: dict[str, str] | None = None) -> str:
    """Run a generated project's own tests with its .venv's Python; return pytest's output."""
    python = venv_python(project / ".venv")
    proc = run_captured([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)
    assert proc.returncode == 0 and " passed" in proc.stdout, (
        proc.stdout[-3000:] + proc.stderr[-2000:]
    )
    return proc.stdout


# ---------------------------------------------------------------- the set-up's output
def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def retry_line(text: str) -> str:
    """The command the set-up told the user to run after fixing the cause."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if "After fixing it, finish the setup with:" in line)
    return lines[i + 1].strip()


def run_retry(text: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The test types what the user would type, so this one runs through a shell (Windows: cmd).
    shell = ["cmd", "/c"] if WINDOWS else ["bash", "-c"]
    proc = subprocess.run(
        [*shell, retry_line(text)], env=env, capture_output=True, text=True, check=False
    )
    print(proc.stdout[-6000:], proc.stderr[-6000:], sep="\n")
    return proc


def generated_files_in_place(project: Path, *names: str) -> None:
    for name in (
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".copier-answers.yml",
        "tools/envtool.json",
        *names,
    ):
        assert (project / name).is_file(), f"{name} was lost"
    assert (project / "tools" / "envtool" / "__main__.py").is_file()


# ---------------------------------------------------------------- template releases (git)
IDENTITY = ["-c", "user.name=Course Staff", "-c", "user.email=staff@example.org"]


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{out.stderr}"
    return out.stdout


def commit(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    if tag:
        git(repo, "tag", tag)


def template_repo(dst: Path) -> Path:
    """The template's files (as copier reads them from a clone) in a fresh git repository."""
    dst.mkdir(parents=True)
    for name in ("copier.yml", "template", "migrations", "extensions"):
        src = ROOT / name
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(src, dst / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(src, dst / name)
    git(dst, "init", "--quiet", "-b", "main")
    return dst


def answers_of(project: Path) -> dict[str, object]:
    answers: dict[str, object] = yaml.safe_load(
        (project / ".copier-answers.yml").read_text(encoding="utf-8")
    )
    return answers


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the working tree (no .git): renders see uncommitted edits and are fast."""
    dst = tmp_path_factory.mktemp("template-src")
    for name in ("copier.yml", "template", "migrations", "extensions"):  # migrations: _migrations
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst / name)
    return dst


# ---------------------------------------------------------------- the environment tool, by plain import
# What copier.yml's manager_commands gives uv (tools/envtool.json requires every key).
COMMANDS = {"env": "uv sync", "run": "uv run", "test": "uv run pytest", "lock": "uv lock",
            "activate": "source .venv/bin/activate"}  # fmt: skip


HERE_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def manager_of(name: str, project: Path = Path("/p"), **fields: object) -> Manager:
    """A manager of an imaginary project (nothing is run)."""
    fields = {"commands": COMMANDS, "lock_tool": lock_tool(name), **fields}
    config = Config(project, name, "3.12", "p", "p", **fields)  # type: ignore[arg-type]
    return manager_for(config)


def tool_copy(tmp_path: Path, config: dict[str, object]) -> Path:
    """A project folder with a copy of the tool and `config` as its tools/envtool.json."""
    project = tmp_path / "proj"
    shutil.copytree(
        TOOL, project / "tools" / "envtool", ignore=shutil.ignore_patterns("__pycache__")
    )
    (project / "tools" / "envtool.json").write_text(json.dumps(config), encoding="utf-8")
    return project


def lock_tool(manager: str) -> str:
    """The manager's lock tool, as the render context decides it (tools/envtool.json's)."""
    return render_context(manager, "none", "cpu", COMMANDS)["lock_tool"]


def good_config(manager: str = "venv") -> dict[str, object]:
    return {"env_manager": manager, "python_version": HERE_VERSION, "project_slug": "p",
            "package_name": "p", "commands": COMMANDS, "lock_tool": lock_tool(manager),
            "dependencies": [{"req": "numpy", "name": "numpy", "import": "numpy"}]}  # fmt: skip


# ---------------------------------------------------------------- rendered projects (no environment)


@pytest.fixture(scope="session")
def projects(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One render per (manager, ci) plus variants: no Dockerfile; pytorch with a private index.
    Session-wide: the CI files', pre-commit's, the doctor's and the kernel's tests read them."""
    out = tmp_path_factory.mktemp("tooling")
    answers: dict[str, dict[str, Any]] = {}
    for manager in MANAGERS:
        for ci in ("github", "gitlab"):
            answers[f"{manager}-{ci}"] = {"env_manager": manager, "ci": ci}
    answers["uv-github-nodocker"] = {"env_manager": "uv", "ci": "github", "dockerfile": False}
    answers["venv-gitlab-nodocker"] = {"env_manager": "venv", "ci": "gitlab", "dockerfile": False}
    for ci in ("github", "gitlab"):
        answers[f"venv-{ci}-torch-index"] = {
            "env_manager": "venv",
            "ci": ci,
            "ml_framework": "pytorch",
            "package_index_url": "https://pypi.example.org/simple",
        }
    answers["none"] = {"env_manager": "uv", "ci": "none"}
    answers["uv-github-noexample"] = {"env_manager": "uv", "ci": "github", "example": "none"}
    return {
        name: render(template, out / name, project_name="Tool Box", python_version="3.12", **a)
        for name, a in answers.items()
    }


# ---------------------------------------------------------------- environments shared between files
# test_mnist and test_serving both need the PyTorch Digit Lab (venv, Python 3.11, the CPU torch):
# built once per test run (about a minute and 1.5 GB), each file working in its own copy.
TORCH_WARM_UP = (
    "import torch, mlflow.pytorch, sklearn, hydra, fastapi, optuna, pytest; "
    f"import {PKG}.train, {PKG}.api, {PKG}.sweep"
)


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test run that every xdist worker shares (each worker's own basetemp is
    a folder in it); without xdist, the run's own basetemp."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def torch_digit_lab(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PyTorch Digit Lab and its .venv (requirements_installed), its heavy imports run once
    so that their bytecode is written where every copy finds it. Built once per test run: the
    first worker that asks builds it under a lock, the others wait and use it. Use it through
    project_copy."""
    python = find_python("3.11") or pytest.skip("no Python 3.11 on this machine (PATH or pyenv)")
    base = run_folder(tmp_path_factory) / "torch-shared"
    dst, built = base / "p", base / "built"
    with filelock.FileLock(f"{base}.lock"):
        if not built.exists():
            shutil.rmtree(base, ignore_errors=True)  # what a failed build left
            base.mkdir()
            env = env_without_dev_venv(tool_bin(base), MPLBACKEND="Agg")
            digit_lab(template, dst, env_manager="venv", ml_framework="pytorch")
            requirements_installed(dst, python, env, "torch (shared): install")
            run_ok("torch (shared): first imports", [venv_python(dst / ".venv"), "-c",
                   TORCH_WARM_UP], dst, env)  # fmt: skip
            built.touch()
    return dst


# The first import of a package in a new environment compiles its bytecode: 5-7 s of CPU for
# the default project's stack, in every environment a test makes. uv installs by hard-linking the
# files of its cache (one per wheel), __pycache__ folders included. So once per test run the
# default project's packages are put in the shared uv cache and compiled there, and each later
# uv environment starts with their bytecode, as a second import would (staff check does the same
# for a class: byte_compile). The tests still run every step; the first-import cost itself is
# measured by bench/ (private, empty caches), not here.


def linked_archives(venv: Path, archives: Path) -> set[Path]:
    """The folders of uv's cache (one unpacked wheel each) that `venv`'s packages link to: a
    file of each package's RECORD, found at the same place in a folder, as the same inode."""
    site = next(venv.glob("lib/python*/site-packages"), venv / "Lib" / "site-packages")
    found = set()
    for record in site.glob("*.dist-info/RECORD"):
        paths = [line.split(",")[0] for line in record.read_text("utf-8").splitlines()]
        rel = next((p for p in paths if p.endswith(".py") and not p.startswith("..")), None)
        if rel is None or not (site / rel).is_file():
            continue
        inode = (site / rel).stat().st_ino
        for twin in archives.glob(f"*/{rel}"):
            if twin.stat().st_ino == inode:
                found.add(archives / twin.relative_to(archives).parts[0])
    return found


@pytest.fixture(scope="session", autouse=True)
def uv_cache_bytecode(
    template: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Fill and compile the shared uv cache once per run that makes environments (slow tests):
    the first worker does it, the others go on (their first environments compile their own)."""
    python = find_python("3.11")
    base = run_folder(tmp_path_factory) / "uv-bytecode"
    slow = any(item.get_closest_marker("slow") for item in request.session.items)
    if python is None or not slow or base.with_suffix(".done").exists():
        return
    try:
        held = filelock.FileLock(f"{base}.lock").acquire(timeout=0)
    except filelock.Timeout:
        return  # another worker is filling it
    with held:
        if base.with_suffix(".done").exists():
            return
        shutil.rmtree(base, ignore_errors=True)
        answers = {"env_manager": "uv", "jupyter_kernel": True, "data_versioning": "dvc"}
        dst = digit_lab(template, base / "p", **answers)
        env = env_without_dev_venv(tool_bin(base, "uv"), UV_PYTHON=python)
        filled = timed("uv cache: fill", [dev_tool("uv"), "sync"], cwd=dst, env=env)
        cache = subprocess.run([dev_tool("uv"), "cache", "dir"], env=env, capture_output=True,
                               text=True, check=False).stdout.strip()  # fmt: skip
        if filled.returncode == 0 and cache:  # else the tests compile as they go
            byte_compile(python, sorted(linked_archives(dst / ".venv", Path(cache) / "archive-v0")))
        shutil.rmtree(base, ignore_errors=True)
        base.with_suffix(".done").touch()


def project_copy(src: Path, dst: Path) -> Path:
    """A copy of the project `src` and its .venv at `dst`, as if made there. The project's files
    are copied (tests edit them in place); the .venv's are hard links (installers and Python's
    bytecode writes replace a file, never rewrite it), except the files that name `src`: its
    scripts' shebangs, the activate scripts and the editable install's .pth, rewritten for `dst`."""
    venv = src / ".venv"
    shutil.copytree(src, dst, symlinks=True, ignore=lambda d, _: [".venv"] if d == str(src) else [])
    shutil.copytree(venv, dst / ".venv", symlinks=True, copy_function=os.link)
    old, new = str(src).encode(), str(dst).encode()
    site = next(
        (dst / ".venv").glob("lib/python*/site-packages"), dst / ".venv" / "Lib" / "site-packages"
    )
    names = [
        dst / ".venv" / "pyvenv.cfg",
        *(dst / ".venv").glob("*/*"),
        *site.glob("*.pth"),
        *site.glob("*.dist-info/direct_url.json"),
    ]
    for path in names:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if old in data:
                mode = path.stat().st_mode
                path.unlink()  # the link to src's file goes; src keeps its own
                path.write_bytes(data.replace(old, new))
                path.chmod(mode)
    return dst


# ---------------------------------------------------------------- conda: the recording stand-in
CONDA_STAND_IN = Path(__file__).with_name("conda_standin.py")  # NOT conda: see its docstring
STAND_IN_PYTHON = "3.12"  # the Python of the envs the stand-in makes with venvs


def install_conda_stand_in(bin_dir: Path, name: str = "conda") -> Path:
    """Put the recording stand-in (tests/conda_standin.py, NOT conda) in `bin_dir` as `name`,
    run by the test venv's Python. It logs to and answers from $STANDIN_ROOT."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n" + CONDA_STAND_IN.read_text(encoding="utf-8"), encoding="utf-8"
    )
    script.chmod(0o755)
    return script


def stand_in_log(root: Path) -> list[dict[str, Any]]:
    """The stand-in's calls, in order: {"tool", "args", "cwd"} each."""
    lines = (root / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def answer_conda_compare(root: Path, stdout: str, status: int) -> None:
    """What the stand-in's `conda compare` prints and its exit status, from now on."""
    (root / "compare.json").write_text(
        json.dumps({"stdout": stdout, "status": status}), encoding="utf-8"
    )


def marker_wheel(folder: Path) -> Path:
    """A minimal wheel, `conda-marker` 1.0: a distribution no index has, so nothing replaces it
    unless something removes or rewrites what was installed."""
    files = {
        "conda_marker.py": b"MARK = 'installed before, by conda'\n",
        "conda_marker-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: conda-marker\nVersion: 1.0\n",
        "conda_marker-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    record += "conda_marker-1.0.dist-info/RECORD,,\n"
    wheel = folder / "conda_marker-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("conda_marker-1.0.dist-info/RECORD", record)
    return wheel


STAND_IN_ENVS: dict[Path, dict[str, str]] = {}


def stand_in(root: Path, tool: str, numpy: str) -> dict[str, str]:
    """An environment with the recording stand-in as `conda` first on PATH, and what it needs to
    make a conda env (a venv of Python STAND_IN_PYTHON holding `numpy` and the marker wheel,
    recorded as conda's, with the env's own `tool`)."""
    install_conda_stand_in(root / "bin")
    python = find_python(STAND_IN_PYTHON)
    assert python
    env = env_without_dev_venv(
        root / "bin",
        STANDIN_ROOT=str(root),
        STANDIN_PYTHON=python,
        STANDIN_PACKAGES=f"{numpy} {marker_wheel(root)}",
        STANDIN_TOOLS=tool,
        STANDIN_DEV_BIN=str(DEV_BIN),
    )
    for var in ("CONDA_EXE", "MAMBA_EXE", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"):
        env.pop(var, None)
    STAND_IN_ENVS[root] = env
    return env


def stand_in_env(root: Path) -> dict[str, str]:
    """The environment a stand-in was made with (a later command, a retry), or one with the
    stand-in on PATH alone."""
    if root in STAND_IN_ENVS:
        return dict(STAND_IN_ENVS[root])
    env = env_without_dev_venv(root / "bin", STANDIN_ROOT=str(root))
    for var in ("CONDA_EXE", "MAMBA_EXE", "CONDA_PREFIX", "CONDA_DEFAULT_ENV"):
        env.pop(var, None)
    return env


def conda_state(prefix: Path) -> dict[str, dict[str, str]]:
    """What conda's records say now: each recorded distribution's version and its files' hash."""
    state = {}
    for record in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record.read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for f in sorted(data["files"]):
            path = prefix / f
            digest.update(f.encode() + (path.read_bytes() if path.exists() else b"MISSING"))
        state[data["name"]] = {"version": data["version"], "files": digest.hexdigest()}
    return state
