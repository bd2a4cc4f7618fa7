"""conda + Poetry and conda + uv (env_manager conda-poetry, conda-uv): the Python half for real.

No conda exists here, so the recording stand-in (tests/conda_standin.py, NOT conda) answers the
conda commands and makes the "conda environment": a plain venv at <root>/envs/<name> (not a
.venv, not in the project) holding numpy, pip and a marker distribution installed before, which it records as conda's the
way conda does (conda-meta/<name>-<version>-<build>.json listing their files, INSTALLER "conda"),
and the env's own uv/Poetry (linked from the test venv, as environment.yml has conda install
them). Then the real uv/Poetry install the project into that prefix through `copier copy
--trust`, and the tests check that conda's packages are untouched, file by file. The real conda
test runs where conda exists (the template's own CI, with Miniforge).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from envtool import conda_records
from envtool.conda_records import keep_conda

from tests.conftest import (
    STAND_IN_PYTHON,
    conda_state,
    copier_copy,
    env_without_dev_venv,
    find_python,
    good_config,
    manager_of,
    marker_wheel,
    pip_index_url,
    posix_only,
    read_result,
    render,
    run_captured,
    stand_in,
    stand_in_env,
    stand_in_log,
    tomllib,
    tool_copy,
)

PYTHON = STAND_IN_PYTHON  # the Python of the conda envs the stand-in makes


def calls(root: Path) -> list[list[str]]:
    return [call["args"] for call in stand_in_log(root)]


def run_in(prefix: Path, code: str) -> str:
    proc = run_captured([prefix / "bin" / "python", "-I", "-c", code], cwd=Path("/"))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not find_python(PYTHON):
        pytest.skip(f"Python {PYTHON} is not installed here")
    return tmp_path_factory.mktemp("hybrid")


def hybrid_copy(
    template: Path, work: Path, manager: str, numpy: str = "numpy", **answers: str
) -> tuple[Path, Path, str]:
    tool = manager.split("-")[1]
    root = work / f"stand-in-{manager}-{len(list(work.iterdir()))}"
    env = stand_in(root, tool, numpy)
    dst = work / f"{manager}-project-{len(list(work.iterdir()))}"
    data = {
        "project_name": "Hybrid Demo",
        "env_manager": manager,
        "python_version": PYTHON,
        "ml_framework": "none",
        "example": "none",
        "jupyter_kernel": "false",
        "git_init": "false",
        "package_index_url": pip_index_url(),
        **answers,
    }
    proc = copier_copy(template, dst, env, **data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dst, root, proc.stdout + proc.stderr


@pytest.mark.slow
@posix_only("a #! script standing in for conda")
@pytest.mark.parametrize("manager", ["conda-uv", "conda-poetry"])
def test_hybrid_installs_into_the_conda_env_and_leaves_condas_packages(
    template: Path, work: Path, manager: str
) -> None:
    tool = manager.split("-")[1]
    # uv leaves conda's numpy alone even where uv.lock pins another one (--no-install-package);
    # for Poetry, conda's numpy is the version the lock takes (see the refusal test below).
    numpy = "numpy==2.2.6" if tool == "uv" else "numpy"
    project, root, text = hybrid_copy(template, work, manager, numpy=numpy, git_init="true")
    assert f"Environment ready ({manager})" in text, text
    # Both locks are committed on top of the first commit: `copier update` needs a clean tree.
    assert f"committed {tool}.lock, conda-linux-64.lock" in text
    status = run_captured(["git", "status", "--porcelain"], project)
    assert status.returncode == 0 and status.stdout == "", status.stdout
    prefix = root / "envs" / "hybrid-demo"
    slug = "hybrid-demo"
    # conda's commands, exactly and in order (queries of the env list aside).
    assert [c for c in calls(root) if c[:2] != ["env", "list"] and c != ["--version"]] == [
        ["env", "create", "-n", slug, "-f", "environment.yml"],
        ["list", "-n", slug, "--explicit", "--md5"],
    ]
    # Untouched: same versions and the same bytes in every file conda's records list.
    before = json.loads((root / "conda-owned.json").read_text(encoding="utf-8"))
    assert {"numpy", "pip", "conda_marker"} <= set(before)
    assert conda_state(prefix) == before
    assert run_in(prefix, "import numpy; print(numpy.__version__)") == before["numpy"]["version"]
    # The project and its dependencies import from the conda prefix; no .venv anywhere.
    out = run_in(
        prefix, "import hybrid_demo, pandas, matplotlib, conda_marker; print(hybrid_demo.__file__)"
    )
    assert Path(out).is_relative_to(project / "src")
    assert not (project / ".venv").exists()
    assert (project / f"{tool}.lock").is_file()
    assert (project / "conda-linux-64.lock").read_text().startswith("# This file may be used")
    result = read_result(project)
    assert result["status"] == "ok" and str(prefix) in result["location"]
    assert "conda activate hybrid-demo" in result["activate"]
    # The doctor checks both halves and finds the env healthy.
    doctor = run_captured(
        [sys.executable, project / "tools" / "envtool", "doctor"], project, env=stand_in_env(root)
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "none replaced by a PyPI copy" in doctor.stdout
    assert f"{tool}.lock matches pyproject.toml" in doctor.stdout
    assert "conda's packages match conda-linux-64.lock" in doctor.stdout

    # `make lock`: both locks, one writer each: conda re-solves environment.yml and writes its
    # explicit lock, then the tool writes its own.
    n = len(calls(root))
    (project / f"{tool}.lock").unlink()
    lock = run_captured(
        [sys.executable, project / "tools" / "envtool", "lock"], project, env=stand_in_env(root)
    )
    assert lock.returncode == 0, lock.stdout + lock.stderr
    assert [c for c in calls(root)[n:] if c[:2] != ["env", "list"] and c != ["--version"]] == [
        ["env", "update", "-n", slug, "-f", "environment.yml", "--prune"],
        ["list", "-n", slug, "--explicit", "--md5"],
    ]
    assert (project / f"{tool}.lock").is_file()
    assert f"{tool} wrote {tool}.lock" in lock.stdout

    # A PyPI copy over one of conda's packages: the doctor names it and the fix.
    pip = [prefix / "bin" / "python", "-m", "pip", "install", "-q", "--force-reinstall"]
    run_captured([*pip, next(root.glob("conda_marker-*.whl"))]).check_returncode()
    doctor = run_captured(
        [sys.executable, project / "tools" / "envtool", "doctor"], project, env=stand_in_env(root)
    )
    assert doctor.returncode == 1
    assert "another installer rewrote: conda_marker 1.0" in doctor.stdout
    assert "fix: conda install -n hybrid-demo --force-reinstall conda_marker" in doctor.stdout


@pytest.mark.slow
@posix_only("a #! script standing in for conda")
def test_poetry_refuses_to_replace_a_conda_package(template: Path, work: Path) -> None:
    """conda's numpy is older than poetry.lock's: Poetry would put a PyPI copy over it, so the
    set-up stops before, names the package, keeps the project and conda's numpy."""
    project, root, text = hybrid_copy(template, work, "conda-poetry", numpy="numpy==2.2.6")
    assert "FAILED at step 'install the project and its dependencies'" in text, text
    assert "poetry install would replace packages conda installed: 2.2.6 -> " in text
    assert (project / "pyproject.toml").is_file() and (project / "environment.yml").is_file()
    prefix = root / "envs" / "hybrid-demo"
    assert conda_state(prefix) == json.loads((root / "conda-owned.json").read_text())
    # The printed fix, as typed (conda: the stand-in, which records the new numpy as conda's),
    # then the printed retry: Poetry now finds conda's numpy at the locked version.
    fix = next(line for line in text.splitlines() if line.strip().startswith("fix: "))
    command = fix.split("fix: have conda install the versions poetry.lock pins: ")[1]
    command = command.split("   (then")[0]
    assert command.startswith("conda install -n hybrid-demo -c conda-forge numpy=")
    env = stand_in_env(root)
    assert run_captured(["bash", "-c", command], project, env=env).returncode == 0
    retry = text.splitlines()[
        text.splitlines().index("  After fixing it, finish the setup with:") + 1
    ]
    proc = run_captured(["bash", "-c", retry.strip()], env=env)
    assert proc.returncode == 0 and "Environment ready (conda-poetry)" in proc.stdout, proc.stdout
    assert conda_state(prefix) == json.loads((root / "conda-owned.json").read_text())


def fix_and_retry(text: str, env: dict[str, str], cwd: Path) -> str:
    """Run the printed fix's command as typed, then the printed retry; the retry's output."""
    fix = next(line for line in text.splitlines() if line.strip().startswith("fix: "))
    command = re.search(r"\((conda env remove -n \S+)\)|now: (conda install .+)$", fix)
    assert command, fix
    typed = command.group(1) or command.group(2)
    assert run_captured(["bash", "-c", typed], cwd, env=env).returncode == 0, typed
    lines = text.splitlines()
    retry = lines[lines.index("  After fixing it, finish the setup with:") + 1].strip()
    proc = run_captured(["bash", "-c", retry], env=env)
    return proc.stdout + proc.stderr


@pytest.mark.slow
@posix_only("a #! script standing in for conda")
def test_base_like_env_is_refused_then_the_fix_works(template: Path, work: Path) -> None:
    """The env the set-up would install into has conda itself in it (base, or a copy): it stops
    before uv runs, keeps the project, and its fix (remove that env, retry) works."""
    root = work / "stand-in-base-like"
    env = stand_in(root, "uv", "numpy")
    (root / "make-it-base-like").touch()
    dst = work / "base-like"
    proc = copier_copy(template, dst, env, env_manager="conda-uv", python_version=PYTHON,
                       ml_framework="none", example="none", jupyter_kernel="false",
                       git_init="false")  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "FAILED at step 'install the project and its dependencies': refusing to install" in text
    assert "conda itself is installed in it" in text
    assert not (dst / "uv.lock").exists() and (dst / "environment.yml").is_file()
    again = fix_and_retry(text, stand_in_env(root), dst)
    assert "Environment ready (conda-uv)" in again, again


@pytest.mark.slow
@posix_only("a #! script standing in for conda")
def test_tool_missing_from_the_env_then_the_fix_works(template: Path, work: Path) -> None:
    root = work / "stand-in-no-tool"
    env = stand_in(root, "", "numpy")  # the env gets no uv
    dst = work / "no-tool"
    proc = copier_copy(template, dst, env, env_manager="conda-uv", python_version=PYTHON,
                       ml_framework="none", example="none", jupyter_kernel="false",
                       git_init="false")  # fmt: skip
    text = proc.stdout + proc.stderr
    assert "uv is not installed in the conda environment my-ml-project" in text, text
    assert "conda install -n my-ml-project -c conda-forge uv" in text
    again = fix_and_retry(text, stand_in_env(root), dst)
    assert "Environment ready (conda-uv)" in again, again


@posix_only("a PATH without conda")
def test_conda_missing_keeps_the_project_and_names_the_fix(template: Path, work: Path) -> None:
    bin_dir = work / "no-conda-bin"
    bin_dir.mkdir()
    env = stand_in_env(work / "nowhere")
    env["PATH"] = str(bin_dir) + ":" + "/usr/bin:/bin"
    dst = work / "no-conda"
    proc = copier_copy(template, dst, env, env_manager="conda-uv", git_init="false")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "FAILED at step 'find the tool'" in text
    assert "Miniforge" in text and "micromamba" in text
    assert f"cd {dst} && python3 tools/envtool setup" in text
    assert (dst / "environment.yml").is_file() and (dst / "uv.lock").exists() is False


# ---------------------------------------------------------------- fast: the rules themselves


def test_base_like_prefix_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    env = tmp_path / "envs" / "demo"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "history").write_text("")
    (env / "conda-meta" / "python-3.12.0-h_0.json").write_text("{}")
    assert conda_records.base_reason(env) is None
    base = tmp_path / "miniforge3"
    (base / "conda-meta").mkdir(parents=True)
    (base / "conda-meta" / "history").write_text("")
    (base / "conda-meta" / "conda-25.1.1-py312_0.json").write_text("{}")
    assert "conda itself is installed" in (conda_records.base_reason(base) or "")
    monkeypatch.setenv("CONDA_PREFIX", str(env))
    monkeypatch.setenv("CONDA_DEFAULT_ENV", "base")
    assert "CONDA_DEFAULT_ENV=base" in (conda_records.base_reason(env) or "")


def test_replaced_names_the_installer(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.12" / "site-packages"
    info = site / "numpy-2.2.6.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("numpy/__init__.py,,\n")
    (tmp_path / "conda-meta").mkdir()
    rel = "lib/python3.12/site-packages/numpy-2.2.6.dist-info/RECORD"
    (tmp_path / "conda-meta" / "numpy-2.2.6-py312_0.json").write_text(json.dumps({"files": [rel]}))
    before = conda_records.conda_owned(tmp_path)
    assert set(before) == {"numpy"}
    assert conda_records.replaced(tmp_path, before) == []
    shutil.rmtree(info)
    new = site / "numpy-2.3.5.dist-info"
    new.mkdir()
    (new / "INSTALLER").write_text("uv\n")
    assert conda_records.replaced(tmp_path, before) == [
        "numpy 2.2.6 (conda's) was replaced by 2.3.5 (uv)"
    ]


@pytest.mark.parametrize("manager", ["conda-poetry", "conda-uv"])
def test_split_is_written_once_and_each_package_has_one_owner(
    template: Path, tmp_path: Path, manager: str
) -> None:
    import yaml

    dst = render(
        template,
        tmp_path / "p",
        env_manager=manager,
        python_version="3.12",
        ml_framework="pytorch",
        accelerator="cuda",
    )
    env = yaml.safe_load((dst / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    tool = {"conda-poetry": "poetry>=2.1", "conda-uv": "uv>=0.8"}[manager]
    # Everything conda installs; no pip section: the Python packages are pyproject.toml's.
    assert env["dependencies"] == ["python=3.12", "pip", tool, "pytorch-gpu>=2.4"]
    text = (dst / "pyproject.toml").read_text()
    pyproject = tomllib.loads(text)
    names = [d.split(">")[0] for d in pyproject["project"]["dependencies"]]
    # torch is conda's; the rest (Hydra, MLflow, the service's packages) pyproject.toml's
    assert names[:4] == ["numpy", "pandas", "matplotlib", "scikit-learn"]
    assert "torch" not in names and {"hydra-core", "mlflow", "fastapi"} <= set(names)
    assert "download.pytorch.org" not in text  # no PyPI torch source either
    config: dict[str, Any] = json.loads((dst / "tools" / "envtool.json").read_text())
    assert config["conda_provides"] == ["python", "pip", manager.split("-")[1], "torch"]
    owners = {d["name"]: d["owner"] for d in config["dependencies"]}
    assert owners["torch"] == "conda" and owners["numpy"] == "python"


@posix_only("a venv's bin/python")
def test_image_guard_fails_when_a_conda_package_is_replaced(tmp_path: Path) -> None:
    """The Dockerfile's guard (python -m envtool.managers.conda guard <install>): an install
    that rewrites a package conda's records list fails the step, naming it."""
    prefix = tmp_path / "env"
    run_captured([sys.executable, "-m", "venv", prefix]).check_returncode()
    wheel = marker_wheel(tmp_path)
    python = prefix / "bin" / "python"
    run_captured([python, "-m", "pip", "install", "-q", wheel]).check_returncode()
    site = next(prefix.glob("lib/python*/site-packages"))
    info = site / "conda_marker-1.0.dist-info"
    files = [
        f"{site.relative_to(prefix)}/{line.split(',')[0]}"
        for line in (info / "RECORD").read_text().splitlines()
    ]
    (prefix / "conda-meta").mkdir()
    record = {"name": "conda_marker", "version": "1.0", "files": files}
    (prefix / "conda-meta" / "conda_marker-1.0-0.json").write_text(json.dumps(record))
    # The guard reads the lock tool from the project's tools/envtool.json (mounted with the tool):
    # Poetry's way (pip stands in for it here), which adds no argument to the command.
    tools = tool_copy(tmp_path, good_config("conda-poetry")) / "tools"
    env = {"PYTHONPATH": str(tools), "PATH": f"{prefix / 'bin'}:/usr/bin:/bin"}
    guard = [python, "-m", "envtool.managers.conda", "guard"]
    harmless = run_captured([*guard, python, "-c", "print('nothing installed')"], env=env)
    assert harmless.returncode == 0, harmless.stdout + harmless.stderr
    assert "guard: 1 conda packages" in harmless.stdout
    reinstall = [python, "-m", "pip", "install", "-q", "--force-reinstall", wheel]
    # conda's copy differs from the wheel's (as conda's own RECORDs do): a reinstall shows.
    (info / "RECORD").write_text((info / "RECORD").read_text() + "# conda's copy\n")
    proc = run_captured([*guard, *reinstall], env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "guard: conda_marker 1.0 (conda's) was replaced by 1.0 (pip)" in proc.stdout


def test_the_lock_tool_is_read_from_envtool_json_and_keeps_conda_packages() -> None:
    """One decision, the render context's lock_tool (tools/envtool.json): uv installs into the
    prefix and skips each of conda's packages; Poetry makes no virtualenv. The set-up's conda-uv
    sync and the image's guard both take it from keep_conda."""
    skip = ["--no-install-package", "numpy", "--no-install-package", "torch"]
    assert keep_conda("uv", Path("/env"), ["torch", "numpy"]) == (
        skip,
        {"UV_PROJECT_ENVIRONMENT": "/env"},
    )
    assert keep_conda("poetry", Path("/env"), ["numpy"]) == (
        [],
        {"POETRY_VIRTUALENVS_CREATE": "false"},
    )
    for name, tool in (("conda-uv", "uv"), ("conda-poetry", "poetry")):
        manager: Any = manager_of(name)
        assert (manager.python_tool, manager.lock_file) == (tool, f"{tool}.lock")
        manager.conda_before = {"numpy": None}
        env = manager.python_env(Path("/env"))
        assert (
            env["CONDA_PREFIX"] == "/env"
            and keep_conda(tool, Path("/env"), ["numpy"])[1].items() <= env.items()
        )
        if tool == "uv":
            assert manager.sync_args(Path("/env"))[-2:] == ["--no-install-package", "numpy"]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (
            {"env_manager": "conda-uv", "ml_framework": "pytorch", "accelerator": "cuda",
             "extra_dependencies": "tqdm torch>=2.5"},
            "conda provides torch in this project",
        ),
        ({"env_manager": "conda-poetry", "extra_dependencies": "poetry"}, "conda provides poetry"),
        ({"env_manager": "conda-uv", "project_slug": "base"}, '"base" is conda\'s own environment'),
    ],
)  # fmt: skip
def test_copier_refuses_a_package_on_both_sides(
    template: Path, tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(template, tmp_path / "p", **answers)
    assert not (tmp_path / "p").exists()


def test_cpu_hybrid_takes_the_framework_from_the_index(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", env_manager="conda-uv", ml_framework="pytorch",
                 extra_dependencies="tqdm")  # fmt: skip
    reqs = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.4" in reqs and "tqdm" in reqs


@posix_only("a #! script standing in for conda")
def test_setup_refuses_a_conda_package_added_to_pyproject(template: Path, tmp_path: Path) -> None:
    """pyproject.toml edited by hand to ask uv for torch, which conda provides (CUDA build):
    the set-up stops before creating anything, names it and keeps the project."""
    dst = render(template, tmp_path / "p", env_manager="conda-uv", ml_framework="pytorch",
                 accelerator="cuda")  # fmt: skip
    pyproject = dst / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.26",', '"numpy>=1.26", "torch",'))
    root = tmp_path / "stand-in"
    env = stand_in(root, "uv", "numpy")
    proc = run_captured([sys.executable, dst / "tools" / "envtool", "setup"], dst, env=env)
    assert proc.returncode == 1
    assert "FAILED at step 'find the tool': pyproject.toml asks uv for torch" in proc.stdout
    assert "remove torch from pyproject.toml's dependencies" in proc.stdout
    assert calls(root) == [["--version"]]  # nothing created


# ---------------------------------------------------------------- real conda (the template's CI)
REAL_CONDA = any(shutil.which(t) for t in ("mamba", "micromamba", "conda"))


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_CONDA,
    reason="no conda, mamba or micromamba on PATH (none is installable on this machine); runs in "
    ".github/workflows/tests.yml, which installs Miniforge",
)
@pytest.mark.parametrize("manager", ["conda-poetry", "conda-uv"])
def test_hybrid_with_real_conda(template: Path, tmp_path: Path, manager: str) -> None:
    """copier copy with real conda, then real Poetry/uv into its env; the doctor checks both."""
    slug = f"hybrid-real-{manager.split('-')[1]}-{os.getpid()}"
    dst = tmp_path / slug
    env = env_without_dev_venv(None)
    try:
        proc = copier_copy(
            template, dst, env, project_name=slug, env_manager=manager, python_version=PYTHON,
            ml_framework="none", example="none", jupyter_kernel="false", git_init="false",
            package_index_url=pip_index_url(),
        )  # fmt: skip
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0 and f"Environment ready ({manager})" in text, text
        assert not (dst / ".venv").exists()
        assert (dst / f"{manager.split('-')[1]}.lock").is_file()
        assert list(dst.glob("conda-*.lock")), "no explicit conda lock"
        doctor = run_captured([sys.executable, dst / "tools" / "envtool", "doctor"], dst, env=env)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "none replaced by a PyPI copy" in doctor.stdout
    finally:
        conda = shutil.which("conda") or shutil.which("mamba") or shutil.which("micromamba")
        assert conda
        run_captured([conda, "env", "remove", "-n", slug, "--yes"], env=env)


@pytest.mark.slow
@posix_only("a #! script standing in for conda")
@pytest.mark.parametrize(
    ("manager", "setting"),
    [
        ("conda-uv", "pyproject.toml's [[tool.uv.index]]"),
        ("conda-poetry", "pyproject.toml's [[tool.poetry.source]]"),
    ],
)
def test_unreachable_index_on_the_python_side_is_named(
    template: Path, work: Path, manager: str, setting: str
) -> None:
    """The Python half's index is a closed local port: named as unreachable, with its setting."""
    closed = "http://127.0.0.1:9/simple"  # port 9 (discard): nothing listens here
    _, _, text = hybrid_copy(template, work, manager, package_index_url=closed)
    failed = next(line for line in text.splitlines() if line.startswith("FAILED at step"))
    assert "install the project" in failed, text
    assert "the package index could not be reached" in failed and "127.0.0.1:9" in failed, text
    assert f"To use another index, set it in {setting}" in text, text
