"""The environment tool's set-up end to end: the real `copier copy --trust` CLI, real uv/poetry/pip.

Each project is generated once (module fixtures) and checked several ways. Failure paths check
that every generated file stays in place and that the printed retry command finishes the job.
conda: the recording stand-in (tests/conda_standin.py, NOT conda); real conda where it exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from envtool import cli

from tests.conftest import (
    DEV_BIN,
    bundled_pip,
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
    retry_line,
    run_captured,
    run_retry,
    stand_in_log,
    tool_bin,
    venv_manager,
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
def test_venv_old_bundled_pip_is_upgraded_first(venv_run: tuple[Path, str, Path]) -> None:
    """A Python's bundled pip can be years old (pip 23 resolved the default project's 126
    packages in twice pip 26's time): the set-up upgrades one older than PIP_FLOOR first."""
    project, text, _ = venv_run
    bundled, upgrade = bundled_pip(str(find_python("3.12")))
    pip = subprocess.run(
        [env_python(project), "-m", "pip", "--version"], capture_output=True, text=True, check=True
    )
    assert int(pip.stdout.split()[1].split(".")[0]) >= venv_manager.PIP_FLOOR, pip.stdout
    assert (f"(pip {bundled} upgraded to " in text) is upgrade, text


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


def generated(template: Path, dst: Path, manager: str, **answers: str) -> tuple[Path, str]:
    """`copier copy` of a scikit-learn project for `manager`, found on PATH (where the README's
    install puts it); the copy succeeded: (project, output)."""
    env = env_without_dev_venv(tool_bin(dst.parent, manager))
    proc = copier_copy(template, dst, env, env_manager=manager, ml_framework="sklearn", **answers)
    assert proc.returncode == 0, output(proc)
    return dst, output(proc)


def copy_with_files_kept(template: Path, dst: Path, env: dict[str, str], **answers: str) -> str:
    """`copier copy` whose environment step fails: copier still exits 0 and every generated file
    is in place; its output."""
    proc = copier_copy(template, dst, env, **answers)
    assert proc.returncode == 0, output(proc)
    generated_files_in_place(dst)
    return output(proc)


@pytest.fixture(scope="module")
def uv_run(template: Path, work: Path) -> tuple[Path, str]:
    if not find_python("3.13"):
        pytest.skip("Python 3.13 is not installed here")
    answers = {"python_version": "3.13", "extra_dependencies": "tqdm"}
    return generated(template, work / "uv-sklearn", "uv", project_name="Uv Demo", **answers)


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
    # The project's own suite in a uv environment of these answers (uv, scikit-learn, the MNIST
    # starter, Python 3.13): test_mnist's uv_project, from the same uv.lock.


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
    return generated(
        template,
        work / "poetry-sklearn",
        "poetry",
        project_name="Poetry Demo",
        python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        package_index_url=pip_index_url(),
        jupyter_kernel="false",
    )


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
    text = copy_with_files_kept(
        template,
        dst,
        env_without_dev_venv(tool_bin(work)),  # no uv
        project_name="Uv None",
        env_manager="uv",
        python_version="3.13",
        ml_framework="none",
        example="none",
    )
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
    text = copy_with_files_kept(
        template,
        dst,
        env_without_dev_venv(tool_bin(work, "uv")),
        env_manager=manager,
        python_version="3.14",
        ml_framework="none",
    )
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
    text = copy_with_files_kept(
        template, dst, env, env_manager="uv", python_version="3.14", ml_framework="none"
    )
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
    # A new user's git: no identity anywhere (the first commit uses the tool's stand-in).
    env = env_without_dev_venv(tool_bin(work, "uv"), GIT_CONFIG_NOSYSTEM="1",
                               GIT_CONFIG_GLOBAL=str(work / "bad-dep-gitconfig"))  # fmt: skip
    text = copy_with_files_kept(
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
    # The printed next step commits the lock, after the identity it says git lacks: typed as shown.
    step = re.search(r"next: +commit the lock file: (.+)\n +\(git does not know who you are yet: "
                     r"first, once, with your own name and e-mail: (.+)\)\n", proc.stdout)  # fmt: skip
    assert step, proc.stdout
    for command in (step[2], step[1]):
        done = subprocess.run(["bash", "-c", command], cwd=dst, env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "uv.lock"
        not in subprocess.run(
            ["git", "status", "--porcelain"], cwd=dst, env=env, capture_output=True, text=True
        ).stdout
    )


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
