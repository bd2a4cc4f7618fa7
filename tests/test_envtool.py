"""The environment tool (tools/envtool) end to end: the real `copier copy --trust` CLI, real uv/poetry/pip.

Each project is generated once (module fixtures) and checked several ways. Failure paths check
that every generated file stays in place and that the printed retry command finishes the job.

Fast unit tests of the environment tool: interpreter discovery, the probe, messages, result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from envtool import base, cli, discovery, probe, shell
from envtool.managers import conda, uv

from tests.conftest import (
    DEV_BIN,
    MANAGERS,
    TOOL,
    WINDOWS,
    answer_conda_compare,
    copier_cli,
    copier_copy,
    env_without_dev_venv,
    find_python,
    generated_files_in_place,
    install_conda_stand_in,
    output,
    pip_index_url,
    posix_only,
    project_tests_pass,
    pty_run,
    read_result,
    render,
    retry_line,
    run_captured,
    run_retry,
    stand_in_log,
    tool_bin,
    venv_python,
)


def env_python(project: Path) -> Path:
    return venv_python(project / ".venv")


def imports_ok(project: Path, modules: list[str]) -> None:
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    subprocess.run([env_python(project), "-I", "-c", code, *modules], check=True, cwd="/")


def sanity_rows(text: str) -> dict[str, str]:
    """module -> result, from the hook's sanity-import table."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.split() == ["import", "version", "result"]
    )
    rows = {}
    for line in lines[start + 1 :]:
        parts = line.split()
        if len(parts) < 3 or line.lstrip().startswith("$"):
            break
        rows[parts[0]] = " ".join(parts[2:])
    return rows


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hook")


# ---------------------------------------------------------------- venv (+ hostile input, odd path)

HOSTILE = 'Robust "quotes" $(touch pwned) `touch pwned2`; rm -rf ./canary && echo hacked'


@pytest.fixture(scope="module")
def venv_run(template: Path, work: Path) -> tuple[Path, str, Path]:
    if not find_python("3.12"):
        pytest.skip("Python 3.12 is not installed here")
    cwd = work / "cwd"
    cwd.mkdir()
    (cwd / "canary").write_text("still here", encoding="utf-8")
    dst = work / "my prøject ü" / "venv ML Ω"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(tool_bin(work)),
        cwd=cwd,
        project_name="Venv Demo",
        description=HOSTILE,
        env_manager="venv",
        python_version="3.12",
        ml_framework="sklearn",
        extra_dependencies="tqdm pyyaml",
        jupyter_kernel="false",
    )
    assert proc.returncode == 0, output(proc)
    return dst, output(proc), cwd


@pytest.mark.slow
def test_venv_env_created_and_locked(venv_run: tuple[Path, str, Path]) -> None:
    project, text, _ = venv_run
    assert "Environment ready (venv)" in text, text
    assert env_python(project).exists()
    lock = (project / "requirements.lock").read_text(encoding="utf-8").lower()
    for pinned in ("numpy==", "scikit-learn==", "tqdm==", "pyyaml=="):
        assert pinned in lock
    assert "venv-demo" not in lock  # the project itself is editable, not pinned
    assert "Python 3.12." in text  # the exact version asked for (only pyenv provides it here)


@pytest.mark.slow
def test_venv_sanity_table_and_imports(venv_run: tuple[Path, str, Path]) -> None:
    project, text, _ = venv_run
    rows = sanity_rows(text)
    for module in ("venv_demo", "numpy", "pandas", "matplotlib", "sklearn", "tqdm", "yaml"):
        assert rows.get(module) == "ok", rows
    assert "imports ok, dependency check passed" in text  # the probe's pip check ran
    imports_ok(project, ["venv_demo", "numpy", "sklearn", "tqdm", "yaml"])


@pytest.mark.slow
def test_venv_install_leaves_byte_compiling_to_the_first_import(
    venv_run: tuple[Path, str, Path],
) -> None:
    """pip's compile-everything step took half the install (pip --no-compile); the sanity
    import compiles what it uses, and nothing compiles packages that nobody imports."""
    venv = venv_run[0] / ".venv"
    site = next(venv.glob("lib/python3.*/site-packages"), venv / "Lib" / "site-packages")
    assert (site / "pandas" / "tests" / "__init__.py").is_file()  # shipped, never imported
    assert not list((site / "pandas" / "tests").rglob("*.pyc"))
    assert list((site / "pandas" / "__pycache__").glob("__init__.*.pyc"))  # the sanity import's


@pytest.mark.slow
def test_venv_project_tests_pass(venv_run: tuple[Path, str, Path]) -> None:
    project_tests_pass(venv_run[0])


@pytest.mark.slow
def test_venv_git_repository_first_commit(venv_run: tuple[Path, str, Path]) -> None:
    project = venv_run[0]
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True, check=True
    )
    # The generated files first, then the lock file the hook wrote: the tree is left clean.
    assert log.stdout.splitlines() == [
        "Add the lock file written by the environment tool",
        "Initial commit from the copier-mlops template",
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert "pyproject.toml" in tracked and ".copier-answers.yml" in tracked
    assert ".venv/" not in tracked


@pytest.mark.slow
def test_answers_never_reach_a_shell(venv_run: tuple[Path, str, Path], work: Path) -> None:
    project, _, cwd = venv_run
    assert (cwd / "canary").read_text(encoding="utf-8") == "still here"
    assert not [p for p in work.rglob("pwned*") if ".venv" not in p.parts]
    meta = subprocess.run(
        [
            env_python(project),
            "-c",
            "from importlib.metadata import metadata; print(metadata('venv-demo')['Summary'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert meta.stdout.strip() == HOSTILE


# ---------------------------------------------------------------- uv


@pytest.fixture(scope="module")
def uv_run(template: Path, work: Path) -> tuple[Path, str]:
    if not find_python("3.13"):
        pytest.skip("Python 3.13 is not installed here")
    dst = work / "uv-sklearn"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(tool_bin(work, "uv")),
        project_name="Uv Demo",
        env_manager="uv",
        python_version="3.13",
        ml_framework="sklearn",
        extra_dependencies="tqdm",
    )
    assert proc.returncode == 0, output(proc)
    return dst, output(proc)


@pytest.mark.slow
def test_uv_env(uv_run: tuple[Path, str]) -> None:
    project, text = uv_run
    assert "Environment ready (uv)" in text, text
    assert (project / "uv.lock").is_file()
    assert "Python 3.13." in text
    rows = sanity_rows(text)
    assert all(rows.get(m) == "ok" for m in ("uv_demo", "numpy", "sklearn", "tqdm")), rows
    assert "imports ok, dependency check passed" in text  # the probe's pip check ran
    imports_ok(project, ["uv_demo", "numpy", "sklearn", "tqdm"])
    project_tests_pass(project)


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
def test_make_env_rebuilds_from_scratch_without_copier(
    uv_run: tuple[Path, str], work: Path
) -> None:
    """`make env` runs the same steps on the finished project, e.g. after deleting .venv."""
    project = uv_run[0]
    shutil.rmtree(project / ".venv")
    env = env_without_dev_venv(tool_bin(work, "uv"))
    proc = subprocess.run(
        ["make", "env"], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "created .venv" in proc.stdout
    assert sanity_rows(proc.stdout)["sklearn"] == "ok"
    imports_ok(project, ["uv_demo", "sklearn", "tqdm"])


# ---------------------------------------------------------------- poetry


@pytest.fixture(scope="module")
def poetry_run(template: Path, work: Path) -> tuple[Path, str]:
    dst = work / "poetry-sklearn"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(tool_bin(work, "poetry")),
        project_name="Poetry Demo",
        env_manager="poetry",
        python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        ml_framework="sklearn",
        package_index_url=pip_index_url(),
        jupyter_kernel="false",
    )
    assert proc.returncode == 0, output(proc)
    return dst, output(proc)


@pytest.mark.slow
def test_poetry_env(poetry_run: tuple[Path, str]) -> None:
    project, text = poetry_run
    assert "Environment ready (poetry)" in text, text
    assert (project / "poetry.lock").is_file()
    assert env_python(project).exists()  # in-project .venv (poetry.toml)
    rows = sanity_rows(text)
    assert all(rows.get(m) == "ok" for m in ("poetry_demo", "numpy", "pandas", "sklearn")), rows
    imports_ok(project, ["poetry_demo", "numpy", "sklearn"])
    project_tests_pass(project)


# ---------------------------------------------------------------- failure paths and retries


@pytest.mark.slow
@posix_only("hiding Python 3.13 by hiding pyenv (Windows finds it with the py launcher)")
def test_uv_missing_tool_then_missing_python_then_retry(template: Path, work: Path) -> None:
    """uv absent -> files kept, fix named; then no Python 3.13 visible -> same; then it works."""
    if not find_python("3.13"):
        pytest.skip("Python 3.13 is not installed here")
    dst = work / "uv-none"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(tool_bin(work)),  # no uv
        project_name="Uv None",
        env_manager="uv",
        python_version="3.13",
        ml_framework="none",
        example="none",
    )
    text = output(proc)
    assert proc.returncode == 0, text
    generated_files_in_place(dst)
    assert "FAILED at step 'find the tool': uv is not installed" in text
    assert "fix: install uv" in text
    assert not (dst / ".venv").exists()

    # The user installs uv, but Python 3.13 is not visible to it or to us (no pyenv).
    no_pyenv = [p for p in os.environ["PATH"].split(os.pathsep) if ".pyenv" not in p]
    hidden = env_without_dev_venv(tool_bin(work, "uv"), PYENV_ROOT=str(work / "no-pyenv"))
    hidden["PATH"] = os.pathsep.join(
        [str(tool_bin(work, "uv")), *[p for p in no_pyenv if Path(p) != DEV_BIN]]
    )
    proc = run_retry(text, hidden)
    assert proc.returncode == 1  # run by hand it reports failure to the shell
    assert "no Python 3.13 found on this machine, and uv may not download one" in proc.stdout
    assert "fix: install Python 3.13" in proc.stdout
    generated_files_in_place(dst)

    # Python 3.13 installed (pyenv visible again): the same retry command finishes the job.
    proc = run_retry(proc.stdout, env_without_dev_venv(tool_bin(work, "uv")))
    assert proc.returncode == 0, proc.stdout
    assert "Environment ready (uv)" in proc.stdout
    assert (dst / "uv.lock").is_file()
    rows = sanity_rows(proc.stdout)
    assert rows.get("uv_none") == rows.get("numpy") == "ok"
    assert "sklearn" not in rows  # ml_framework none, no example: no scikit-learn
    project_tests_pass(dst)


@pytest.mark.slow
@pytest.mark.parametrize("manager", ["venv", "uv"])
def test_no_interpreter_for_python_version(template: Path, work: Path, manager: str) -> None:
    if find_python("3.14"):
        pytest.skip("Python 3.14 exists here; this test needs a version that does not")
    dst = work / f"py314-{manager}"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(tool_bin(work, "uv")),
        env_manager=manager,
        python_version="3.14",
        ml_framework="none",
    )
    text = output(proc)
    assert proc.returncode == 0, text
    generated_files_in_place(dst)
    assert "no Python 3.14 found on this machine" in text
    assert "fix: install Python 3.14" in text
    assert not (dst / ".venv").exists()  # never a silent switch to another version
    assert retry_line(text) == cli.retry_command(dst.resolve())


@pytest.mark.slow
def test_uv_download_is_announced_and_its_failure_explained(template: Path, work: Path) -> None:
    """Downloads allowed but no network (a closed local port as uv's Python mirror)."""
    if find_python("3.14"):
        pytest.skip("Python 3.14 exists here; this test needs a version that does not")
    dst = work / "py314-download"
    env = env_without_dev_venv(
        tool_bin(work, "uv"),
        UV_PYTHON_INSTALL_MIRROR="http://127.0.0.1:9/",
        UV_PYTHON_INSTALL_DIR=str(work / "uv-pythons"),
    )
    env.pop("UV_PYTHON_DOWNLOADS")
    proc = copier_copy(
        template, dst, env, env_manager="uv", python_version="3.14", ml_framework="none"
    )
    text = output(proc)
    assert proc.returncode == 0, text
    generated_files_in_place(dst)
    assert "No Python 3.14 on this machine: uv downloads a managed Python 3.14 now." in text
    assert (
        "FAILED at step 'find Python 3.14': uv could not download Python 3.14 (no network?)" in text
    )
    assert "fix: connect to the internet, or install Python 3.14" in text
    assert not (dst / ".venv").exists()


@pytest.mark.slow
def test_failed_install_then_fixed(template: Path, work: Path) -> None:
    dst = work / "uv-bad-dep"
    bad = "no-such-package-copier-mlops-xyz"
    env = env_without_dev_venv(tool_bin(work, "uv"))
    proc = copier_copy(
        template,
        dst,
        env,
        project_name="Bad Dep",
        env_manager="uv",
        python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        ml_framework="none",
        example="none",
        extra_dependencies=f"tqdm {bad}",
    )
    text = output(proc)
    assert proc.returncode == 0, text
    generated_files_in_place(dst)
    assert "FAILED at step 'install the project and its dependencies'" in text
    flat = re.sub(r"\s+(\|\s+)?", " ", text)  # uv wraps its message to the terminal's width
    assert f"Because {bad} was not found in the package registry" in flat  # the tool's own words
    assert f"fix: the package index has no package '{bad}'" in text
    assert "It comes from your answer extra_dependencies" in text  # test_hook_firstrun follows it

    # The user removes the typo and runs the printed command.
    path = dst / "pyproject.toml"
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if bad not in line
    ]
    path.write_text("".join(kept), encoding="utf-8")
    proc = run_retry(text, env)
    assert proc.returncode == 0, proc.stdout
    assert "Environment ready (uv)" in proc.stdout
    assert (dst / "uv.lock").is_file()
    rows = sanity_rows(proc.stdout)
    assert rows.get("bad_dep") == rows.get("tqdm") == "ok"
    assert not any(bad.replace("-", "_") in m for m in rows)  # removed, so no longer checked


# ---------------------------------------------------------------- conda


@pytest.mark.slow
@posix_only("#! scripts standing in for conda and micromamba")
@pytest.mark.parametrize(
    ("present", "chosen"), [(("conda",), "conda"), (("conda", "micromamba"), "micromamba")]
)
@pytest.mark.slow
def test_conda_commands_with_recording_stand_in(
    template: Path, work: Path, present: tuple[str, ...], chosen: str
) -> None:
    """No conda can be installed here: check the exact command lines against a stand-in."""
    root = work / f"stand-in-{chosen}"
    bin_dir = root / "bin"
    for name in present:
        install_conda_stand_in(bin_dir, name)
    env = env_without_dev_venv(bin_dir, STANDIN_ROOT=str(root))
    for var in ("CONDA_EXE", "MAMBA_EXE"):
        env.pop(var, None)
    dst = work / f"conda-{chosen}"
    proc = copier_copy(
        template, dst, env, project_name="Conda Demo", env_manager="conda", ml_framework="sklearn"
    )
    text = output(proc)
    assert proc.returncode == 0, text
    generated_files_in_place(dst, "environment.yml")
    yes = ["--yes"] if chosen != "conda" else []
    calls = stand_in_log(root)
    assert {c["tool"] for c in calls} == {chosen}
    assert all(Path(c["cwd"]) == dst for c in calls)
    create = ["env", "create", "-n", "conda-demo", "-f", "environment.yml", *yes]
    assert [c["args"] for c in calls if c["args"][0] == "env" and c["args"][1] != "list"] == [
        create,
        ["env", "export", "-n", "conda-demo"],
    ]
    lock = (dst / "environment.lock.yml").read_text(encoding="utf-8")
    assert lock.endswith("name: stand-in-export\n")
    # The stand-in makes no Python, so the sanity import must fail cleanly, naming the env's python.
    assert "FAILED at step 'sanity import'" in text
    assert str(root / "envs" / "conda-demo" / "bin" / "python") in text

    # The retry finds the env and updates it instead of creating it again.
    proc = run_retry(text, env)
    calls = [c["args"] for c in stand_in_log(root)]
    update = ["env", "update", "-n", "conda-demo", "-f", "environment.yml", "--prune", *yes]
    assert update in calls and calls.count(create) == 1


@pytest.mark.slow
@pytest.mark.skipif(
    not any(shutil.which(t) for t in ("mamba", "micromamba", "conda")),
    reason="no conda, mamba or micromamba on PATH (none is installable on this machine)",
)
@pytest.mark.slow
def test_conda_real(template: Path, work: Path) -> None:
    dst = work / "conda-real"
    proc = copier_copy(
        template,
        dst,
        env_without_dev_venv(None),
        project_name="Conda Real",
        env_manager="conda",
        ml_framework="sklearn",
    )
    text = output(proc)
    assert proc.returncode == 0 and "Environment ready (conda)" in text, text
    rows = sanity_rows(text)
    assert rows.get("conda_real") == rows.get("numpy") == rows.get("sklearn") == "ok"
    assert (dst / "environment.lock.yml").is_file()


# ---------------------------------------------------------------- git and copier update


@pytest.mark.slow
def test_git_init_skipped_inside_a_repository(template: Path, work: Path) -> None:
    outer = work / "outer-repo"
    outer.mkdir()
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    dst = outer / "inner"
    proc = copier_copy(template, dst, env_without_dev_venv(None), create_env="false")
    assert proc.returncode == 0, output(proc)
    assert "already inside the git repository" in output(proc)
    assert not (dst / ".git").exists()
    assert "creating the" not in output(proc)  # create_env false: no env hook


@pytest.mark.slow
def test_git_init_skipped_without_git(template: Path, work: Path) -> None:
    empty = work / "empty-bin"
    empty.mkdir()
    env = env_without_dev_venv(None)
    env["PATH"] = str(empty)
    dst = work / "no-git"
    proc = copier_copy(template, dst, env, create_env="false")
    assert proc.returncode == 0, output(proc)
    assert "git is not installed: no repository created" in output(proc)
    generated_files_in_place(dst)


@pytest.mark.slow
def test_update_does_not_run_the_hook(template: Path, work: Path) -> None:
    if not find_python("3.13"):
        pytest.skip("Python 3.13 is not installed here")
    repo = work / "template-repo"
    shutil.copytree(template, repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    subprocess.run([*git, "tag", "v1.0.0"], cwd=repo, check=True)

    env = env_without_dev_venv(tool_bin(work, "uv"))
    dst = work / "updated"
    proc = copier_copy(
        repo,
        dst,
        env,
        project_name="Up Demo",
        env_manager="uv",
        python_version="3.13",
        ml_framework="none",
        example="none",
    )
    assert "Environment ready (uv)" in output(proc), output(proc)
    # The hook committed uv.lock itself: the tree is clean, so `copier update` can run.
    status = subprocess.run(["git", "status", "--porcelain"], cwd=dst, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert status.stdout == ""
    shutil.rmtree(dst / ".venv")

    (repo / "template" / "CHANGELOG.md").write_text("# Changes\n", encoding="utf-8")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v2"], cwd=repo, check=True)
    subprocess.run([*git, "tag", "v2.0.0"], cwd=repo, check=True)

    proc = subprocess.run(
        [*copier_cli(), "update", "--trust", "--defaults"],
        cwd=dst,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    text = output(proc)
    assert proc.returncode == 0, text
    assert (dst / "CHANGELOG.md").is_file()  # the update happened
    assert "copier-mlops:" not in text  # neither the git nor the env hook ran
    assert not (dst / ".venv").exists()


# ---------------------------------------------------------------- interactive offer


@pytest.mark.slow
@posix_only("a pseudo-terminal (pty, termios)")
def test_interactive_run_offers_alternatives_when_tool_missing(template: Path, work: Path) -> None:
    """On a terminal, under copier (which can re-render the project for the fallback), a missing
    uv brings up a questionary menu; choosing "Stop" ends cleanly and keeps the project."""
    dst = work / "interactive"
    env = env_without_dev_venv(tool_bin(work))  # no uv on PATH
    args = [*copier_cli(), "copy", "--trust", "--defaults", "--data", "env_manager=uv",
            "--data", "ml_framework=none", "--data", "example=none", template, dst]  # fmt: skip
    answered = False

    def reply(seen: bytes) -> bytes | None:
        nonlocal answered
        if answered or b"What now?" not in seen:
            return None
        answered = True
        return b"\x1b[B\r"  # arrow down to "Stop here", Enter

    code, text = pty_run(args, reply, env=env, cwd=work, timeout=120)
    assert code == 0, text  # under copier: exit 0, the project stays
    assert "Use a plain .venv with pip instead" in text and "Stop here: I will install uv" in text
    assert "FAILED at step 'find the tool': uv is not installed" in text
    assert not (dst / ".venv").exists()
    generated_files_in_place(dst)
    # Outside copier (python3 tools/envtool) nothing can re-render the project: no offer.
    proc2 = run_captured(["python3", dst / "tools" / "envtool", "setup"], cwd=dst, env=env)
    assert proc2.returncode == 1 and "What now?" not in output(proc2), output(proc2)


# ---------------------------------------------------------------- unit tests (fast)
# What copier.yml's manager_commands gives uv (tools/envtool.json requires every key).
COMMANDS = {"env": "uv sync", "run": "uv run", "test": "uv run pytest", "lock": "uv lock",
            "activate": "source .venv/bin/activate"}  # fmt: skip


def manager_of(name: str, project: Path = Path("/p"), **fields: object) -> base.Manager:
    """A manager of an imaginary project (nothing is run)."""
    fields = {"commands": COMMANDS, **fields}
    config = base.Config(project, name, "3.12", "p", "p", **fields)  # type: ignore[arg-type]
    return base.manager_for(config)


HERE_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# The real interpreter behind the test venv's python (a symlink into a venv would not run).
REAL_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ---------------------------------------------------------------- import names


@pytest.mark.parametrize(
    ("req", "name"),
    [
        ("numpy>=1.26", "numpy"),
        ("scikit-learn>=1.4", "scikit-learn"),
        ("uvicorn[standard]==0.30.0", "uvicorn"),
        ("zope.interface ; python_version >= '3'", "zope.interface"),
        ("  tqdm", "tqdm"),
        ("", None),
    ],
)
def test_requirement_name(req: str, name: str | None) -> None:
    parsed = probe.parse(req)
    assert (parsed.name if parsed else None) == name


def test_requirement_applies_skips_extras() -> None:
    assert probe.parse("numpy>=1")
    assert probe.parse('pytest ; extra == "test"') is None
    assert probe.parse("pytest; extra=='dev'") is None


class FakeDist:
    """What module_for reads of an installed distribution: top_level.txt, else its files."""

    def __init__(self, top: list[str], files: list[str] = ()) -> None:  # type: ignore[assignment]
        self.top, self.files = top, [Path(f) for f in files]

    def read_text(self, name: str) -> str | None:
        return "\n".join(self.top) if self.top else None


def test_import_name_order() -> None:
    hints = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
    pyyaml = FakeDist(["_yaml", "yaml"])
    assert probe.module_for(FakeDist(["sklearn"]), "scikit-learn", hints) == "sklearn"  # hint
    assert probe.module_for(pyyaml, "PyYAML", hints) == "yaml"  # normalised before lookup
    assert probe.module_for(FakeDist(["bs4"]), "beautifulsoup4", {}) == "bs4"  # metadata
    assert probe.module_for(FakeDist(["attr", "attrs"]), "attrs", {}) == "attrs"  # own name
    assert probe.module_for(FakeDist([]), "python-dotenv", {}) == "python_dotenv"  # last resort
    # Not built by setuptools (no top_level.txt): its packages, from the files it installed.
    flit = FakeDist([], ["tomli_w/__init__.py", "tomli_w/_writer.py", "x-1.0.dist-info/RECORD"])
    assert probe.module_for(flit, "tomli-w", {}) == "tomli_w"


def test_import_hints_come_from_copier_dependencies(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text(
        '{"env_manager": "uv", "python_version": "3.12", "project_slug": "a-b",'
        ' "package_name": "a_b", "commands": ' + json.dumps(COMMANDS) + ","
        ' "dependencies": [{"req": "scikit-learn>=1.4", "name": "scikit-learn", "import": "sklearn"},'
        ' {"req": "PyYAML[extra]>=6", "name": "pyyaml", "import": "yaml"}]}',
        encoding="utf-8",
    )
    config = base.Config.load(tmp_path)
    assert config.import_hints == {"scikit-learn": "sklearn", "pyyaml": "yaml"}


def test_probe_reports_failed_import_by_name() -> None:
    report = probe.probe({"package": "json", "distribution": "no-such-dist-for-probe"})
    assert report["imports"][0]["module"] == "json" and not report["imports"][0]["error"]
    assert report["imports"][0]["origin"].endswith("__init__.py")  # where it came from
    assert any("not installed" in e for e in report["errors"])
    row = probe.try_import("no_such_module_for_probe", "", "")
    assert row["error"].startswith("ModuleNotFoundError")
    assert probe.failed({"imports": [row]}) and not probe.failed(report)


def test_probe_finds_broken_requirements_and_declared_ones(tmp_path: Path) -> None:
    """pip check's finding from metadata, and pyproject.toml read with a real TOML parser."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nrequires-python = ">=3.10"\n'
        'dependencies = ["pytest>=1", "no-such-dist-xyz>=1"]\n'
        '[dependency-groups]\ndev = ["packaging>=999"]\n',
        encoding="utf-8",
    )
    report = probe.probe({"package": "json", "distribution": "x", "project": str(tmp_path)})
    rows = {r["name"]: r for r in report["declared"]}
    assert rows["pytest"]["ok"] and rows["pytest"]["installed"]
    assert not rows["no-such-dist-xyz"]["ok"] and not rows["no-such-dist-xyz"]["installed"]
    assert rows["packaging"]["installed"] and not rows["packaging"]["ok"]
    assert report["python_ok"] is True and "pytest" in report["distributions"]


def test_probe_reports_a_broken_requirement_like_pip_check(tmp_path: Path) -> None:
    """An installed distribution whose requirement is missing or the wrong version: reported,
    and the probe exits 1 (the Docker build step fails on it)."""
    for name, requires in (("fake-a", "no-such-dep-xyz>=1"), ("fake-b", "pytest<1")):
        info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nRequires-Dist: {requires}\n"
        )
    args = json.dumps({"package": "json", "distribution": "fake-a"})
    proc = run_captured(
        [sys.executable, TOOL / "probe.py", args], env={**os.environ, "PYTHONPATH": str(tmp_path)}
    )
    report = json.loads(proc.stdout.split(probe.MARKER, 1)[1])
    assert proc.returncode == 1, proc.stderr
    broken = "\n".join(report["broken"])
    assert "fake-b 1.0 requires pytest<1, but " in broken
    assert (
        "fake-a 1.0 requires no-such-dep-xyz>=1, which is not installed" in broken
    )  # the project's own


def test_config_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(base.ToolError, match="missing") as info:
        base.Config.load(tmp_path)
    assert "copier-mlops" in info.value.fix
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text('{"env_manager": "uv"}', encoding="utf-8")
    with pytest.raises(base.ToolError, match="python_version"):
        base.Config.load(tmp_path)


# ---------------------------------------------------------------- failure messages


@pytest.mark.parametrize(
    "output",
    [
        "ERROR: No matching distribution found for no-such-pkg-xyz\n",
        "  cause: Because no-such-pkg-xyz was not found in the package registry and you require",
        "Because x depends on no-such-pkg-xyz (*) which doesn't match any versions, version ...",
        "PackagesNotFoundError: The following packages are not available from current channels:"
        "\n\n  - no-such-pkg-xyz\n",
    ],
)
def test_missing_package_is_named(output: str) -> None:
    assert base.missing_package(output) == "no-such-pkg-xyz"


def test_run_failure_carries_the_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(base.ToolError) as info:
        base.run([sys.executable, "-c", code], tmp_path, echo=False)
    assert "exit status 3" in info.value.what
    assert info.value.why.splitlines()[-1] == "line 99"
    assert len(info.value.why.splitlines()) == base.TAIL_LINES


def test_retry_command_quotes_the_path() -> None:
    cmd = cli.retry_command(Path("/tmp/my prøject/x'y"), windows=False)
    assert cmd == "cd '/tmp/my prøject/x'\"'\"'y' && python3 tools/envtool setup"
    # Windows: any drive, cmd and PowerShell alike (the tool finds its project from its path).
    windows = cli.retry_command(Path("D:/a/my proj (1)"), windows=True)
    assert windows == f'py "{Path("D:/a/my proj (1)")}\\tools\\envtool" setup'


def test_activation_per_shell() -> None:
    assert shell.venv_activation(".venv", "posix") == "source .venv/bin/activate"
    assert shell.venv_activation(".venv", "fish") == "source .venv/bin/activate.fish"
    assert shell.venv_activation(".venv", "powershell") == ".venv\\Scripts\\Activate.ps1"
    assert shell.venv_activation(".venv", "cmd") == ".venv\\Scripts\\activate.bat"


def test_uv_downloads_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UV_OFFLINE", raising=False)
    monkeypatch.delenv("UV_PYTHON_DOWNLOADS", raising=False)
    assert uv.downloads_allowed()
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    assert not uv.downloads_allowed()
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "automatic")
    monkeypatch.setenv("UV_OFFLINE", "1")
    assert not uv.downloads_allowed()


# ---------------------------------------------------------------- interpreter discovery


@posix_only("a symlinked python3.X (a Windows python.exe needs its DLLs beside it)")
def test_finds_python_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / f"python{HERE_VERSION}").symlink_to(REAL_PYTHON)
    found = discovery.find_python(
        HERE_VERSION, {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is not None
    assert found.full_version.startswith(HERE_VERSION + ".")
    assert found.tried[0] == str(bin_dir / f"python{HERE_VERSION}")


@posix_only("pyenv's bin/python3.X layout and a symlinked interpreter")
def test_finds_python_in_pyenv_versions(tmp_path: Path) -> None:
    """pyenv's shims serve only the selected version, so its versions folder is searched."""
    version_dir = tmp_path / "pyenv" / "versions" / f"{HERE_VERSION}.99" / "bin"
    version_dir.mkdir(parents=True)
    (version_dir / f"python{HERE_VERSION}").symlink_to(REAL_PYTHON)
    (tmp_path / "pyenv" / "versions" / f"{HERE_VERSION}-dev").mkdir()  # not an exact version
    found = discovery.find_python(
        HERE_VERSION, {"PATH": str(tmp_path / "empty"), "PYENV_ROOT": str(tmp_path / "pyenv")}
    )
    assert found.python is not None
    assert str(version_dir / f"python{HERE_VERSION}") in found.tried


@posix_only("a #! script standing in for a pyenv shim")
def test_broken_shim_is_skipped_not_trusted(tmp_path: Path) -> None:
    """A `python3.X` that fails (like a pyenv shim for another version) is not an answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(
        bin_dir / "python3.99",
        "#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n",
    )
    found = discovery.find_python(
        "3.99", {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is None
    assert str(bin_dir / "python3.99") in found.tried


@posix_only("a symlinked python3 (a Windows python.exe needs its DLLs beside it)")
def test_never_switches_to_another_version(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(REAL_PYTHON)
    found = discovery.find_python(
        "3.99", {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is None
    assert HERE_VERSION in found.other_versions()  # reported, not used


# ---------------------------------------------------------------- conda tool choice


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (["conda"], "conda"),
        (["conda", "micromamba"], "micromamba"),
        (["conda", "micromamba", "mamba"], "mamba"),
    ],
)
def test_conda_tool_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: list[str], chosen: str
) -> None:
    for name in present:  # Windows: batch files, like Miniforge's condabin\conda.bat
        if WINDOWS:
            executable(tmp_path / f"{name}.bat", "@exit /b 0\n")
        else:
            executable(tmp_path / name, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    assert Path(conda.find_conda_tool() or "").stem.lower() == chosen


def test_tool_is_real_files_in_the_template_not_a_symlink() -> None:
    """Windows git checks symlinks out as text files: the template holds the real package."""
    from tests.conftest import TOOL

    assert TOOL.is_dir() and not TOOL.is_symlink()
    assert (TOOL / "__main__.py").is_file() and (TOOL / "managers" / "uv.py").is_file()
    assert not [p for p in TOOL.rglob("*") if p.is_symlink()]


def test_lock_without_a_project_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lock", "--project", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "lock failed: tools/envtool.json is missing" in out
    assert "fix: run this command in the folder of a project generated by copier-mlops" in out


def test_exit_status_under_copier_is_always_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """copier deletes the project when a task fails, so --from-copier never exits non-zero."""
    assert (
        cli.main(["setup", "--project", str(tmp_path), "--no-input"]) == 1
    )  # by hand: real status
    assert cli.main(["setup", "--project", str(tmp_path), "--no-input", "--from-copier"]) == 0
    out = capsys.readouterr().out
    assert "FAILED at step 'read tools/envtool.json'" in out
    assert "python3 tools/envtool setup" in out
    # ... and the same, machine-readable, for roster and bench.
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["failed_step"] == "read tools/envtool.json"
    assert "missing" in result["reason"] and result["fix"] and result["steps"] == []


# ---------------------------------------------------------------- issue 12: first run


def test_path_line_appends_the_folder_for_each_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh")
    assert shell.path_line("/h/b", "posix").endswith("""'export PATH="$PATH:/h/b"' >> ~/.zshrc""")
    monkeypatch.setenv("SHELL", "/bin/bash")
    assert shell.path_line("/h/.copier-mlops/bin", "posix").endswith(
        """'export PATH="$PATH:/h/.copier-mlops/bin"' >> ~/.bashrc"""
    )
    assert shell.path_line("/h/x y/bin", "fish") == "fish_add_path --append '/h/x y/bin'"
    assert "'User') + ';C:\\u\\Scripts'" in shell.path_line("C:\\u\\Scripts", "powershell")
    assert shell.path_line("C:\\u\\Scripts", "cmd").startswith('powershell -NoProfile -Command "')


def test_unreachable_index_names_the_url_without_credentials() -> None:
    out = "error: Failed to fetch: `https://bob:s3cret@pypi.example.org/simple/numpy/`\n" \
        "  Caused by: tcp connect error: Connection refused (os error 111)"  # fmt: skip
    reason = base.unreachable_index(out)
    assert reason == "connection refused: https://pypi.example.org/simple/numpy/"
    assert base.unreachable_index("No matching distribution found for foo") is None
    # A proxy that inspects TLS: uv says so in its own words (seen with a bare environment).
    tls = "error: Failed to fetch: https://pypi.org/simple/matplotlib/\n  cause: invalid peer certificate: UnknownIssuer"
    assert (
        base.unreachable_index(tls)
        == "invalid peer certificate: https://pypi.org/simple/matplotlib/"
    )
    exc = base.ToolError("failed", why=tls)
    cli.explain_install_failure(manager_of("uv"), exc)
    assert exc.what.startswith("the package index could not be reached (invalid peer certificate")
    assert "UV_NATIVE_TLS=1" in exc.fix


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dependencies": "numpy"}, '"dependencies" must be a list'),
        ({"dependencies": [{"import": "numpy"}]}, '"dependencies" must be a list'),
        ({"dev_dependencies": [1]}, '"dev_dependencies" must be a list of strings'),
        (
            {"env_manager": "pipenv"},
            '"env_manager" must be one of conda, conda-poetry, conda-uv, poetry, uv, venv',
        ),
        ({"python_version": "3"}, '"python_version" must look like "3.12"'),
        ({"jupyter_kernel": "yes"}, '"jupyter_kernel" must be true or false'),
        ({"commands": None}, '"commands" must map each of env, run, test, lock, activate'),
        ({"commands": {"env": "uv sync"}}, '"commands" must map each of env, run'),
        ({"dependencies": [{"req": "numpy"}]}, '("req" and "name" required)'),
    ],
)
def test_config_types_are_checked(change: dict[str, object], message: str) -> None:
    good = {"env_manager": "uv", "python_version": "3.12", "project_slug": "a", "package_name": "a",
            "commands": COMMANDS,
            "dependencies": [{"req": "numpy", "name": "numpy", "import": "numpy", "conda": ""}]}  # fmt: skip
    assert base.config_problems(good) == []
    assert any(message in p for p in base.config_problems({**good, **change}))


def test_venv_ownership(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    venv.mkdir()
    assert not base.venv_belongs_to(venv, tmp_path, "demo")  # no pyvenv.cfg: not a venv
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = other\n", encoding="utf-8")
    assert not base.venv_belongs_to(venv, tmp_path, "demo")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = 'demo'\n", encoding="utf-8")
    assert base.venv_belongs_to(venv, tmp_path, "demo")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = demo-py3.12\n", encoding="utf-8")
    assert base.venv_belongs_to(venv, tmp_path, "demo")  # Poetry's own prompt
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    info = venv / "lib" / "python3.12" / "site-packages" / "demo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "direct_url.json").write_text(
        json.dumps({"url": tmp_path.resolve().as_uri(), "dir_info": {"editable": True}}), "utf-8"
    )
    assert base.venv_belongs_to(venv, tmp_path, "demo")


def test_the_tool_has_one_module_per_manager_of_copier_yml() -> None:
    """copier.yml's env_manager choices are the one list: the tool finds a module for each."""
    from envtool.base import manager_class

    assert base.manager_names() == sorted(MANAGERS)
    assert all(manager_class(m).name == m for m in MANAGERS)


@pytest.mark.parametrize("manager", MANAGERS)
def test_each_projects_tool_has_every_module_it_imports(
    template: Path, tmp_path: Path, manager: str
) -> None:
    """A project carries only its manager's modules (and no gpu.py or kernel.py here): every
    module it has imports, and the doctor runs and reports instead of crashing on an import."""
    project = render(template, tmp_path / "p", env_manager=manager, ml_framework="none",
                     example="none", jupyter_kernel=False)  # fmt: skip
    tool = project / "tools" / "envtool"
    assert not (tool / "copying.py").exists() and not (tool / "gpu.py").exists()
    modules = sorted(
        ".".join(("envtool", *p.relative_to(tool).with_suffix("").parts))
        for p in tool.rglob("[a-z]*.py")
    )
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    env = env_without_dev_venv(None, PYTHONPATH=str(tool.parent))
    imported = run_captured([sys.executable, "-c", code, *modules], env=env)
    assert imported.returncode == 0, output(imported)
    doctor = run_captured(
        [sys.executable, tool, "doctor"], cwd=project, env=env_without_dev_venv(None)
    )
    assert doctor.returncode == 1 and "Traceback" not in output(doctor), output(doctor)
    assert "problem(s) found" in output(doctor)


# ---------------------------------------------------------------- issue 20: config, loading, checks


def tool_copy(tmp_path: Path, config: dict[str, object]) -> Path:
    """A project folder with a copy of the tool and `config` as its tools/envtool.json."""
    project = tmp_path / "proj"
    shutil.copytree(
        TOOL, project / "tools" / "envtool", ignore=shutil.ignore_patterns("__pycache__")
    )
    (project / "tools" / "envtool.json").write_text(json.dumps(config), encoding="utf-8")
    return project


def good_config(manager: str = "venv") -> dict[str, object]:
    return {"env_manager": manager, "python_version": HERE_VERSION, "project_slug": "p",
            "package_name": "p", "commands": COMMANDS,
            "dependencies": [{"req": "numpy", "name": "numpy", "import": "numpy"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("commands", '"commands" must map each of env, run, test, lock, activate'),
        ("name", '"dependencies" must be a list of'),
    ],
)
def test_doctor_refuses_a_config_without_required_keys(
    tmp_path: Path, drop: str, message: str
) -> None:
    """Without `commands` (or a dependency's `name`) the doctor said nothing of the config and
    died with a KeyError; now the config is refused, by name, and no fix is printed twice."""
    config = good_config()
    if drop == "commands":
        del config["commands"]
    else:
        config["dependencies"] = [{"req": "numpy", "import": "numpy"}]
    project = tool_copy(tmp_path, config)
    proc = run_captured([sys.executable, project / "tools" / "envtool", "doctor"], cwd=project,
                        env=env_without_dev_venv(None))  # fmt: skip
    text = output(proc)
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "KeyError" not in text, text
    assert message in text, text
    assert "git checkout tools/envtool.json" in text, text
    assert not re.search(r"fix: (.+)   \(or: \1\)", text), text


def test_a_fix_is_never_printed_twice() -> None:
    assert base.or_make("make env", "make env") == "make env"
    assert base.or_make("uv sync", "make env") == "uv sync   (or: make env)"
    manager = manager_of("venv", commands={**COMMANDS, "env": "make env"})
    assert manager.fix_env() == "make env"


def test_a_manager_that_fails_to_load_is_reported_with_its_own_error(tmp_path: Path) -> None:
    project = tool_copy(tmp_path, good_config("uv"))
    module = project / "tools" / "envtool" / "managers" / "uv.py"
    module.write_text(module.read_text(encoding="utf-8") + "import no_such_module_xyz\n", "utf-8")
    env = env_without_dev_venv(None)
    setup = run_captured([sys.executable, project / "tools" / "envtool", "setup"], project, env)
    text = output(setup)
    assert "FAILED at step 'load the uv manager'" in text, text
    assert "ModuleNotFoundError: No module named 'no_such_module_xyz'" in text, text
    assert "read tools/envtool.json" not in text and "unexpected" not in text, text
    doctor = run_captured([sys.executable, project / "tools" / "envtool", "doctor"], project, env)
    assert doctor.returncode == 1 and "Traceback" not in output(doctor), output(doctor)
    assert "No module named 'no_such_module_xyz'" in output(doctor)


def test_doctor_python_check_needs_a_requires_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No requires-python: nothing to check, which is a problem, never "satisfies requires-python "."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    found = probe.probe({"package": "json", "distribution": "x", "project": str(tmp_path)})
    assert found["python_ok"] is None and found["requires_python"] == ""
    from envtool import doctor

    report = doctor.Report()
    doctor.check_probe(report, manager_of("uv", tmp_path), found)
    out = capsys.readouterr().out
    assert "satisfies requires-python" not in out, out
    assert ("pyproject.toml declares no requires-python: the environment's Python is unchecked",
            'add requires-python = ">=3.12" under [project] in pyproject.toml') in report.problems  # fmt: skip


@posix_only("a #! script standing in for conda")
@pytest.mark.parametrize(("printed", "status"), [("[]", 1), ("{}", 0), ("not json", 0), ("[]", 0)])
def test_conda_compare_always_gives_a_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str, status: int
) -> None:
    """Whatever `conda compare` (the recording stand-in, NOT conda) answers: ok, or a problem."""
    install_conda_stand_in(tmp_path)
    answer_conda_compare(tmp_path, printed, status)
    monkeypatch.setenv("STANDIN_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    from envtool import doctor

    report = doctor.Report()
    messages: list[str] = []
    monkeypatch.setattr(report, "ok", messages.append)
    manager = manager_of("conda", tmp_path)
    assert isinstance(manager, conda.CondaManager)
    manager.check_lock(report, None)
    assert len(report.problems) + len(messages) >= 1
    assert report.problems and "conda compare` failed" in report.problems[0][0]


def test_extra_dependency_names_are_compared_as_pep_503_says() -> None:
    """`Foo-_Bar` is `foo-bar` however copier spelt its name (today's Jinja wrote foo--bar): the
    advice is to re-render without it, not that it was added by hand."""
    assert base.canonical("Foo-_Bar") == base.canonical("foo--bar") == "foo-bar"
    assert base.canonical("zope.Interface") == "zope-interface"
    deps = [{"req": "Foo-_Bar", "name": "foo--bar", "import": "foo_bar", "extra": True},
            {"req": "tqdm", "name": "tqdm", "import": "tqdm", "extra": True}]  # fmt: skip
    manager = manager_of("uv", dependencies=deps)
    exc = base.ToolError("failed", why="ERROR: No matching distribution found for Foo-_Bar")
    cli.explain_install_failure(manager, exc)
    assert "It comes from your answer extra_dependencies" in exc.fix, exc.fix
    assert "extra_dependencies=tqdm" in exc.fix, exc.fix
    assert manager.config.import_hints["foo-bar"] == "foo_bar"


# ---------------------------------------------------------------- issue 21: the probe's contract


def test_probe_arguments_come_from_the_config_in_one_place(tmp_path: Path) -> None:
    """project_args is the one derivation of the probe's arguments: the doctor's, and the image
    build's (`probe.py --config tools/envtool.json`) are the same."""
    deps = [{"req": "scikit-learn", "name": "scikit-learn", "import": "sklearn", "owner": "python"},
            {"req": "", "name": "pytorch-gpu", "import": "torch", "owner": "conda"}]  # fmt: skip
    args = probe.project_args("json", "x", deps)
    assert args == {"package": "json", "distribution": "x",
                    "hints": {"scikit-learn": "sklearn", "pytorch-gpu": "torch"},
                    "imports": ["sklearn", "torch"], "provided": {"pytorch-gpu": "torch"}}  # fmt: skip
    config = tmp_path / "envtool.json"
    config.write_text(json.dumps({"package_name": "json", "project_slug": "x"}), encoding="utf-8")
    proc = run_captured([sys.executable, "-I", TOOL / "probe.py", "--config", config])
    report = json.loads(proc.stdout.split(probe.MARKER, 1)[1])
    assert report["imports"][0]["module"] == "json" and not report["imports"][0]["error"]
    assert "the project (x) is not installed" in report["errors"]


def test_pip_index_that_does_not_answer_is_named_not_the_build_backend() -> None:
    """pip in build isolation only says it found no hatchling; the index it lists is checked."""
    out = ("Looking in indexes: http://u:pw@127.0.0.1:9/simple\n"
           "ERROR: No matching distribution found for hatchling\n")  # fmt: skip
    assert base.unreachable_index(out) == "no answer from http://127.0.0.1:9/simple"
    exc = base.ToolError("failed", why=out)
    cli.explain_install_failure(manager_of("venv"), exc)
    assert (
        exc.what
        == "the package index could not be reached (no answer from http://127.0.0.1:9/simple)"
    )
    assert "requirements.txt's first line `--index-url <URL>`" in exc.fix
    local = f"Looking in indexes: {Path(TOOL).as_uri()}\nNo matching distribution found for x\n"
    assert base.unreachable_index(local) is None  # it answers: the package is what is missing
