"""The MNIST starter renders for every framework: right files, ruff-clean (code and notebook),
valid entry points, Makefile targets and README walkthrough; nothing of it without the example.

Running it in real environments is tests/test_mnist_envs.py (slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import posix_only, render

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

RUFF = str(Path(sys.executable).with_name("ruff"))
PKG = "digit_lab"
COMMON = {f"src/{PKG}/data.py", f"src/{PKG}/eda.py", "notebooks/01_explore_digits.ipynb"}
COMMON_TESTS = {f"tests/test_{PKG}_data.py", f"tests/test_{PKG}_eda.py"}
TRAINING = {f"src/{PKG}/model.py", f"src/{PKG}/train.py", f"src/{PKG}/evaluate.py"}
STEPS = ["data", "eda", "train", "evaluate"]

# (ml_framework, accelerator, python_version, env_manager): every framework, both accelerators,
# the oldest and newest Python each framework allows, every manager at least once.
CASES = [
    ("sklearn", None, "3.10", "venv"),
    ("sklearn", None, "3.14", "uv"),
    ("pytorch", "cpu", "3.11", "venv"),
    ("pytorch", "cuda", "3.14", "poetry"),
    ("tensorflow", "cpu", "3.13", "conda"),
    ("tensorflow", "cuda", "3.10", "uv"),
    ("none", None, "3.12", "poetry"),
]


def case_id(case: tuple[Any, ...]) -> str:
    return "-".join(str(v) for v in case if v)


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def project(
    request: pytest.FixtureRequest, template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    framework, accelerator, python, manager = request.param
    answers = {
        "ml_framework": framework,
        "python_version": python,
        "env_manager": manager,
        "example": "mnist",
    }
    if accelerator:
        answers["accelerator"] = accelerator
    dst = render(
        template, tmp_path_factory.mktemp("mnist") / "p", project_name="Digit Lab", **answers
    )
    return dst, answers


def test_files_follow_the_framework(project: tuple[Path, dict[str, Any]]) -> None:
    dst, answers = project
    files = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    expected = COMMON | COMMON_TESTS
    if answers["ml_framework"] != "none":
        expected |= TRAINING | {f"tests/test_{PKG}_train.py"}
    assert expected <= files
    if answers["ml_framework"] == "none":
        assert not (TRAINING | {f"tests/test_{PKG}_train.py"}) & files
    else:
        model = (dst / f"src/{PKG}/model.py").read_text()
        assert f'FRAMEWORK = "{answers["ml_framework"]}"' in model
        if answers["ml_framework"] != "sklearn":
            assert f'ACCELERATOR = "{answers["accelerator"]}"' in model


def example_files(dst: Path) -> list[str]:
    """The files the example adds (the rest of the project is linted by the render tests)."""
    return sorted(
        str(p.relative_to(dst))
        for p in dst.rglob("*")
        if p.relative_to(dst).as_posix()
        in COMMON | COMMON_TESTS | TRAINING | {f"tests/test_{PKG}_train.py"}
    )


def test_ruff_passes_on_code_tests_and_notebook(project: tuple[Path, dict[str, Any]]) -> None:
    """The project's own ruff settings (target version = its python_version) accept the example."""
    dst, _ = project
    files = example_files(dst)
    for cmd in (
        [RUFF, "check", "--no-cache", *files],
        [RUFF, "format", "--no-cache", "--check", *files],
    ):
        result = subprocess.run(cmd, cwd=dst, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    listed = subprocess.run(
        [RUFF, "check", "--no-cache", "--show-files", "."],
        cwd=dst,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "01_explore_digits.ipynb" in listed  # the project's own `ruff check .` lints it too


def installed_pythons() -> list[str]:
    """python3.X executables for 3.10+ on PATH or in pyenv's versions folder."""
    found = {}
    for minor in range(10, 15):
        exe = shutil.which(f"python3.{minor}")
        candidates = [exe] if exe else []
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        candidates += sorted(str(p) for p in root.glob(f"versions/3.{minor}.*/bin/python3.{minor}"))
        for c in candidates:
            ok = subprocess.run([c, "-c", ""], capture_output=True, check=False).returncode == 0
            if ok:
                found[minor] = c
                break
    return list(found.values())


def test_code_compiles_on_every_installed_python(project: tuple[Path, dict[str, Any]]) -> None:
    dst, _ = project
    pythons = installed_pythons()
    assert pythons, "no Python 3.10+ found"
    sources = [str(p) for p in dst.rglob("*.py")]
    for python in pythons:
        code = "import ast, sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)"
        result = subprocess.run([python, "-c", code, *sources], capture_output=True, text=True)
        assert result.returncode == 0, f"{python}: {result.stderr}"


def test_entry_points_resolve_to_main_functions(project: tuple[Path, dict[str, Any]]) -> None:
    dst, answers = project
    scripts = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["scripts"]
    steps = STEPS if answers["ml_framework"] != "none" else STEPS[:2]
    assert sorted(scripts) == sorted(f"mnist-{s}" for s in steps)
    for step in steps:
        module, func = scripts[f"mnist-{step}"].split(":")
        assert (module, func) == (f"{PKG}.{step}", "main")
        source = (dst / "src" / PKG / f"{step}.py").read_text()
        assert "\ndef main(argv: Sequence[str] | None = None) -> int:" in source
        assert 'if __name__ == "__main__":\n    raise SystemExit(main())' in source


def test_notebook_is_valid_nbformat_4(project: tuple[Path, dict[str, Any]]) -> None:
    dst, answers = project
    nb = json.loads((dst / "notebooks/01_explore_digits.ipynb").read_text(encoding="utf-8"))
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    ids = [cell["id"] for cell in nb["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)
    for cell in nb["cells"]:
        assert cell["cell_type"] in {"markdown", "code"}
        assert isinstance(cell["metadata"], dict)
        assert isinstance(cell["source"], list) and all(isinstance(s, str) for s in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None  # shipped clean
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert f"from {PKG}.eda import" in code and f"from {PKG}.data import" in code
    kernel = nb["metadata"]["kernelspec"]
    # The default answers register a kernel named after the project (jupyter_kernel).
    assert kernel["name"] == "digit-lab" and kernel["language"] == "python"
    assert kernel["display_name"] == f"Digit Lab ({answers['env_manager']})"


@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_makefile_targets_run_the_steps(project: tuple[Path, dict[str, Any]]) -> None:
    dst, answers = project
    steps = STEPS if answers["ml_framework"] != "none" else STEPS[:2]
    out = subprocess.run(
        ["make", "-n", *steps, "DATASET=digits", "EPOCHS=3", "ARGS=--limit 100"],
        cwd=dst,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for step in steps:
        epochs = " --epochs 3" if step == "train" else ""
        assert f"-m {PKG}.{step} --dataset digits{epochs} --limit 100" in out
    help_text = subprocess.run(["make", "help"], cwd=dst, capture_output=True, text=True).stdout
    assert all(re.search(rf"^\s+{s}\s", help_text, re.M) for s in steps)
    if answers["ml_framework"] == "none":
        missing = subprocess.run(["make", "-n", "train"], cwd=dst, capture_output=True, text=True)
        assert missing.returncode != 0


def test_readme_walks_through_the_steps(project: tuple[Path, dict[str, Any]]) -> None:
    dst, answers = project
    readme = (dst / "README.md").read_text()
    assert "## The MNIST exercise, step by step" in readme
    assert "make data" in readme and "make eda" in readme and "DATASET=digits" in readme
    assert ("make train" in readme) == (answers["ml_framework"] != "none")
    assert "notebooks/01_explore_digits.ipynb" in readme


def test_without_the_example_nothing_of_it_is_rendered(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", project_name="Digit Lab", example="none")
    files = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    assert not (COMMON | COMMON_TESTS | TRAINING) & files
    assert not (dst / "notebooks").exists()
    assert "scripts" not in tomllib.loads((dst / "pyproject.toml").read_text())["project"]
    assert "MNIST" not in (dst / "README.md").read_text()
    makefile = (dst / "Makefile").read_text()
    assert not re.search(r"^(data|eda|train|evaluate):", makefile, re.M)
