"""The MNIST starter renders for every framework: right files, ruff-clean (code and notebook),
valid entry points, Makefile targets and README walkthrough; nothing of it without the example.

In real environments (slow): the generated project's own tests pass, the entry
points and Makefile targets run, scikit-learn reaches >= 0.95 test accuracy on the digits, the
notebook runs in a real Jupyter kernel, and TensorFlow's tests collect without TensorFlow.

Environments are created directly (uv sync; python -m venv + uv pip install -r
requirements-dev.txt), not through the post-generation hook, which has its own tests (pip's too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import (
    API_TESTS,
    PKG,
    TORCH_CPU,
    api_tests_passed,
    dev_tool,
    digit_lab,
    env_without_dev_venv,
    find_python,
    posix_only,
    program,
    project_copy,
    render,
    requirements_installed,
    run_ok,
    skeleton_tests_pass,
    tomllib,
    tool_bin,
    venv_python,
)

RUFF = str(Path(sys.executable).with_name("ruff"))
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
    """An interpreter of each Python 3.10+ on PATH or in pyenv's versions folder."""
    return [exe for minor in range(10, 15) if (exe := find_python(f"3.{minor}"))]


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
    for step in steps:  # data, eda: --options; train, evaluate: Hydra overrides (configs/)
        if step in ("data", "eda"):
            assert f"-m {PKG}.{step} --dataset digits --limit 100" in out
        else:
            epochs = " trainer.epochs=3" if step == "train" else ""
            assert f"-m {PKG}.{step} data=digits{epochs} --limit 100" in out
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


SKELETON = {f"src/{PKG}/{m}.py" for m in ("data", "model", "train", "predict")}


@pytest.mark.parametrize("framework", ["none", "sklearn", "pytorch", "tensorflow"])
def test_without_the_example_nothing_of_it_is_rendered(
    template: Path, tmp_path: Path, framework: str
) -> None:
    """example=none: no MNIST; with a framework, the skeleton (data, model, train, predict)."""
    dst = render(
        template, tmp_path / "p", project_name="Digit Lab", example="none", ml_framework=framework
    )
    files = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    skeleton = framework != "none"
    assert not ((COMMON | COMMON_TESTS | TRAINING) - (SKELETON if skeleton else set())) & files
    assert (SKELETON | {f"tests/test_{PKG}_skeleton.py"} <= files) == skeleton
    assert not (dst / "notebooks").exists()
    assert "scripts" not in tomllib.loads((dst / "pyproject.toml").read_text())["project"]
    assert "MNIST" not in (dst / "README.md").read_text()
    makefile = (dst / "Makefile").read_text()
    assert not re.search(r"^(data|eda|evaluate):", makefile, re.M)
    assert bool(re.search(r"^train:", makefile, re.M)) == skeleton
    assert bool(re.search(r"^predict:", makefile, re.M)) == skeleton
    if skeleton:  # ruff-clean with the project's own settings
        for cmd in (
            [RUFF, "check", "--no-cache", "."],
            [RUFF, "format", "--no-cache", "--check", "."],
        ):
            result = subprocess.run(cmd, cwd=dst, capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["optuna", "colorlog", "alembic"])
def test_package_name_refuses_optunas_modules(template: Path, tmp_path: Path, name: str) -> None:
    """`make sweep`'s Optuna (and what it imports) is in the starter's environment."""
    with pytest.raises(ValueError, match="which the project's environment installs"):
        render(template, tmp_path / "p", package_name=name, ml_framework="sklearn")


def test_sweep_reaches_every_managers_files(template: Path, tmp_path: Path) -> None:
    for manager in ("venv", "uv", "conda"):
        dst = render(template, tmp_path / manager, ml_framework="sklearn", env_manager=manager)
        files = {"venv": "requirements.txt", "uv": "pyproject.toml", "conda": "environment.yml"}
        assert "optuna>=4.0" in (dst / files[manager]).read_text(), manager
        probe = json.loads((dst / "tools" / "envtool.json").read_text())["dependencies"]
        assert "optuna" in {d["import"] for d in probe}  # the sanity import and the doctor
        assert "sweep:" in (dst / "Makefile").read_text()
    skeleton = render(template, tmp_path / "none", ml_framework="sklearn", example="none")
    assert "optuna" not in (skeleton / "pyproject.toml").read_text()


# ---------------------------------------------------------------- the MNIST starter in real environments (slow)
UV = dev_tool("uv")
DEAD_MIRROR = "file:///nonexistent-mnist-mirror/"
TIMINGS: dict[str, float] = {}  # accuracies reached (times go to conftest's TIMES)

# Runs a notebook's code cells in a real Jupyter kernel (ipykernel is in the project's dev
# dependencies because jupyter_kernel defaults to true with the MNIST example) and prints, per
# cell, the reply status and the MIME types / errors it produced.
NOTEBOOK_RUNNER = """
import json, sys
from jupyter_client.manager import start_new_kernel

nb = json.load(open(sys.argv[1], encoding="utf-8"))
km, kc = start_new_kernel(kernel_name="python3")
report = []
try:
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = []
        def hook(msg, outputs=outputs):
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("display_data", "execute_result"):
                outputs.append(sorted(content["data"]))
            elif kind == "error":
                outputs.append(["error", content["ename"], content["evalue"]])
        reply = kc.execute_interactive("".join(cell["source"]), output_hook=hook, timeout=300)
        report.append({"id": cell["id"], "status": reply["content"]["status"], "outputs": outputs})
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("REPORT " + json.dumps(report))
"""


def python(version: str) -> str:
    """An interpreter of `version`, or skip: the test needs that exact version."""
    return find_python(version) or pytest.skip(
        f"no Python {version} on this machine (PATH or pyenv)"
    )


def env_without_venv(**extra: str) -> dict[str, str]:
    # The Makefile calls `uv` by name: the dev environment's uv is on PATH, nothing else of it.
    bin_dir = tool_bin(Path(tempfile.gettempdir()) / "copier-mlops-mnist", "uv")
    return env_without_dev_venv(bin_dir, MPLBACKEND="Agg", **extra)


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], *, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def timed_ok(label: str, cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """stdout of a command that must succeed, its time reported at the end of the session."""
    return run_ok(label, cmd, cwd, env).stdout


def assert_suite_passed(output: str) -> None:
    last = output.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "error" not in last, output[-3000:]


def metrics(project: Path, dataset: str = "digits", models: str = "models") -> dict[str, Any]:
    return json.loads((project / models / f"{dataset}_metrics.json").read_text())


def evaluation(project: Path, dataset: str = "digits", models: str = "models") -> dict[str, Any]:
    return json.loads((project / models / f"{dataset}_evaluation.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    yield
    if TIMINGS:
        print("\nMNIST env timings (s):", json.dumps(TIMINGS), file=sys.stderr)


# ---------------------------------------------------------------- scikit-learn + uv


@pytest.fixture(scope="module")
def uv_project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    where = tmp_path_factory.mktemp("mnist-uv") / "p"
    # with the Jupyter kernel: the notebook runs in this project
    dst = digit_lab(
        template,
        where,
        env_manager="uv",
        ml_framework="sklearn",
        python_version="3.13",
        jupyter_kernel=True,
    )
    env = env_without_venv(UV_PYTHON=python("3.13"))
    timed_ok("uv sync (sklearn, 3.13)", [UV, "sync"], dst, env)
    return dst, env


@pytest.mark.slow
def test_uv_project_tests_pass(uv_project: tuple[Path, dict]) -> None:
    dst, env = uv_project
    out = timed_ok(
        "uv: project pytest",
        [UV, "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"],
        dst,
        env,
    )
    assert_suite_passed(out)


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_uv_make_train_and_evaluate_on_digits(uv_project: tuple[Path, dict]) -> None:
    """`make train DATASET=digits` reaches >= 0.95 test accuracy; evaluate agrees with it."""
    dst, env = uv_project
    out = timed_ok("uv: make train (digits)", ["make", "train", "DATASET=digits"], dst, env)
    assert "epoch  30/30" in out  # progress per epoch, default epochs for digits
    m = metrics(dst)
    assert m["framework"] == "sklearn" and m["dataset"] == "digits" and len(m["history"]) == 30
    assert "test_accuracy" not in m  # the test images are evaluate's

    timed_ok("uv: make evaluate (digits)", ["make", "evaluate", "DATASET=digits"], dst, env)
    report = json.loads((dst / "models" / "digits_evaluation.json").read_text())
    TIMINGS["sklearn digits test accuracy (uv)"] = report["accuracy"]
    assert report["accuracy"] >= 0.95, report
    assert (dst / "reports/figures/digits_confusion_matrix.png").stat().st_size > 5000


@pytest.mark.slow
def test_uv_console_script_reports_offline_clearly(uv_project: tuple[Path, dict]) -> None:
    dst, env = uv_project
    cmd = [UV, "run", "--frozen", "mnist-data", "--dataset", "mnist", "--mirror", DEAD_MIRROR]
    result = run(cmd, dst, env, check=False)
    assert result.returncode == 1
    assert "Could not download train-images-idx3-ubyte.gz" in result.stderr
    assert "--dataset digits" in result.stderr and "Traceback" not in result.stderr
    assert not list((dst / "data" / "raw").glob("*"))  # nothing half-written


@pytest.mark.slow
def test_uv_notebook_runs_in_a_jupyter_kernel(uv_project: tuple[Path, dict]) -> None:
    dst, env = uv_project
    runner = dst.parent / "run_notebook.py"
    runner.write_text(NOTEBOOK_RUNNER)
    cmd = [UV, "run", "--frozen", "python", str(runner), "01_explore_digits.ipynb"]
    out = timed_ok("uv: notebook in a kernel", cmd, dst / "notebooks", env)
    report = json.loads(out.split("REPORT ", 1)[1])
    assert [c["status"] for c in report] == ["ok"] * len(report), report
    images = [c["id"] for c in report if any("image/png" in o for o in c["outputs"])]
    assert images == ["balance", "samples", "mean"]  # the three figures show inline


# ---------------------------------------------------------------- scikit-learn + venv


@pytest.fixture(scope="module")
def venv_project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    where = tmp_path_factory.mktemp("mnist-venv") / "p"
    dst = digit_lab(
        template, where, env_manager="venv", ml_framework="sklearn", python_version="3.10"
    )
    return requirements_installed(dst, python("3.10"), env_without_venv(), "venv: install (3.10)")


@pytest.mark.slow
def test_venv_project_tests_pass(venv_project: tuple[Path, dict]) -> None:
    dst, env = venv_project
    py = str(venv_python(dst / ".venv"))
    out = timed_ok(
        "venv: project pytest", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], dst, env
    )
    assert_suite_passed(out)


@pytest.mark.slow
def test_venv_console_scripts_train_to_095_on_digits(venv_project: tuple[Path, dict]) -> None:
    dst, env = venv_project
    bin_dir = venv_python(dst / ".venv").parent
    out = timed_ok(
        "venv: mnist-eda (digits)", [program(bin_dir, "mnist-eda"), "--dataset", "digits"], dst, env
    )
    assert "class   train    test" in out
    figures = sorted(p.name for p in (dst / "reports/figures").glob("digits_*.png"))
    assert figures == ["digits_class_histogram.png", "digits_mean_images.png", "digits_samples.png"]

    timed_ok(
        "venv: mnist-train (digits)",
        [program(bin_dir, "mnist-train"), "data=digits"],
        dst,
        env,
    )
    timed_ok(
        "venv: mnist-evaluate (digits)",
        [program(bin_dir, "mnist-evaluate"), "data=digits"],
        dst,
        env,
    )
    accuracy = evaluation(dst)["accuracy"]
    TIMINGS["sklearn digits test accuracy (venv)"] = accuracy
    assert accuracy >= 0.95
    help_text = run([program(bin_dir, "mnist-evaluate"), "--help"], dst, env).stdout
    assert "data: digits, mnist" in help_text and "limit: null" in help_text


def tensorflow_beside(template: Path, venv: Path, name: str, **answers: str) -> Path:
    """The TensorFlow MNIST project `name`, rendered beside the project `venv` (its Python, 3.10),
    to check in that environment, which has no TensorFlow."""
    folder = venv.parent / name.lower().replace(" ", "-")
    return render(
        template,
        folder,
        project_name=name,
        ml_framework="tensorflow",
        python_version="3.10",
        example="mnist",
        **answers,
    )


@pytest.mark.slow
def test_tensorflow_tests_collect_without_tensorflow(
    venv_project: tuple[Path, dict], template: Path
) -> None:
    """TensorFlow is imported lazily, so its project's tests collect (and the data/EDA ones pass)
    in an environment without it: the scikit-learn venv above."""
    venv, env = venv_project
    py = str(venv_python(venv / ".venv"))
    assert run([py, "-c", "import tensorflow"], venv, env, check=False).returncode != 0
    dst = tensorflow_beside(template, venv, "TF Digits")
    tf_env = {**env, "PYTHONPATH": str(dst / "src")}
    collected = run(
        [py, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], dst, tf_env
    )
    assert (
        "tests/test_tf_digits_train.py::test_train_command_writes_model_and_metrics"
        in collected.stdout
    )
    assert "error" not in collected.stdout.strip().splitlines()[-1]
    files = ["tests/test_tf_digits_data.py", "tests/test_tf_digits_eda.py"]
    out = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], dst, tf_env).stdout
    assert_suite_passed(out)
    help_text = run([py, "-m", "tf_digits.train", "--help"], dst, tf_env).stdout
    assert "Train the tensorflow model" in help_text


# ---------------------------------------------------------------- PyTorch + venv (local CPU wheel)


@pytest.fixture(scope="module")
def torch_project(
    torch_digit_lab: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """This file's copy of the PyTorch Digit Lab (built once per run: conftest's torch_digit_lab,
    which test_serving shares)."""
    where = tmp_path_factory.mktemp("mnist-torch") / "p"
    return project_copy(torch_digit_lab, where), env_without_venv()


@pytest.mark.slow
def test_torch_project_tests_pass(torch_project: tuple[Path, dict]) -> None:
    dst, env = torch_project
    py = str(venv_python(dst / ".venv"))
    version = run([py, "-c", "import torch; print(torch.__version__)"], dst, env).stdout.strip()
    assert version == TORCH_CPU
    cmd = [py, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"]
    out = timed_ok("torch: project pytest", cmd, dst, env)
    assert_suite_passed(out)
    # The API's tests among them (test_serving runs them for scikit-learn only).
    assert api_tests_passed(out) >= API_TESTS, out


@pytest.mark.slow
def test_torch_skeleton_tests_pass(torch_project: tuple[Path, dict], template: Path) -> None:
    """example=none with PyTorch: the skeleton's own tests, in the PyTorch environment above
    (same packages: torch, hydra-core, mlflow), its src/ first on the path."""
    skeleton_tests_pass(template, *torch_project, "pytorch")


def assert_types_check(out: str) -> None:
    assert "Success: no issues found" in out, out[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_uv_make_lint_runs_ruff_and_mypy(uv_project: tuple[Path, dict]) -> None:
    """`make lint` passes on the starter, and its type check fails on a type error."""
    dst, env = uv_project
    assert_types_check(timed_ok("uv: make lint (ruff + mypy)", ["make", "lint"], dst, env))
    bad = dst / "src" / PKG / "typo.py"
    bad.write_text('def double(n: int) -> int:\n    return n * 2\n\n\nHALF: int = double("2")\n')
    try:
        out = run(["make", "lint"], dst, env, check=False)
    finally:
        bad.unlink()
    assert out.returncode != 0
    assert 'typo.py:5: error: Argument 1 to "double" has incompatible type "str"' in out.stdout


@pytest.mark.slow
def test_venv_starter_type_checks_on_python_310(venv_project: tuple[Path, dict]) -> None:
    dst, env = venv_project
    out = timed_ok("venv: mypy (3.10)", [str(venv_python(dst / ".venv")), "-m", "mypy"], dst, env)
    assert_types_check(out)


@pytest.mark.slow
def test_tensorflow_starter_type_checks_without_tensorflow(
    venv_project: tuple[Path, dict], template: Path
) -> None:
    """Without TensorFlow in the environment, its starter type-checks with tensorflow as Any
    (pyproject.toml's mypy override for the libraries that ship no types)."""
    venv, env = venv_project
    dst = tensorflow_beside(template, venv, "TF Types")
    out = timed_ok("tensorflow: mypy", [str(venv_python(venv / ".venv")), "-m", "mypy"], dst, env)
    assert_types_check(out)


# A stand-in `tensorflow` with argv[1] GPUs: enough for the model's choice of strategy.
FAKE_GPUS = """
import sys, types
tf = types.ModuleType("tensorflow")
gpus = [f"/physical_device:GPU:{i}" for i in range(int(sys.argv[1]))]
tf.config = types.SimpleNamespace(list_physical_devices=lambda kind: gpus if kind == "GPU" else [])
tf.distribute = types.SimpleNamespace(MirroredStrategy=lambda: "mirrored", get_strategy=lambda: "default")
sys.modules["tensorflow"] = tf
from tf_gpus import model
print(model.distribution_strategy(), "|", model.device_description())
"""


@pytest.mark.slow
def test_tensorflow_mirrors_when_several_gpus_are_visible(
    venv_project: tuple[Path, dict], template: Path
) -> None:
    venv, env = venv_project
    dst = tensorflow_beside(template, venv, "TF GPUs", accelerator="cuda")
    py, tf_env = str(venv_python(venv / ".venv")), {**env, "PYTHONPATH": str(dst / "src")}
    outputs = [run([py, "-c", FAKE_GPUS, str(n)], dst, tf_env).stdout.strip() for n in (0, 1, 2)]
    assert outputs == [
        "default | CPU (no CUDA GPU visible: check the NVIDIA driver with `nvidia-smi`)",
        "default | GPU (1 visible)",
        "mirrored | 2 GPUs (MirroredStrategy)",
    ]


@pytest.mark.slow
def test_torch_starter_type_checks(torch_project: tuple[Path, dict]) -> None:
    dst, env = torch_project
    out = timed_ok("torch: mypy", [str(venv_python(dst / ".venv")), "-m", "mypy"], dst, env)
    assert_types_check(out)


# Run under torchrun: trains through the project's own train.main, then every rank saves the
# parameters it ended with, so the test can compare them across ranks.
RANK_PARAMETERS = """
import os, sys, torch
from {pkg} import train

built = []
def build_model(*args, **kwargs):
    built.append(original(*args, **kwargs))
    return built[-1]
original, train.build_model = train.build_model, build_model
code = train.main(sys.argv[1:])
torch.save(built[0].net.state_dict(), f"{{os.environ['PARAMS_DIR']}}/rank{{os.environ['RANK']}}.params")
sys.exit(code)
"""

# The MLflow runs of the project's store: each run's id and how many epochs of loss it logged.
MLFLOW_RUNS = """
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
for experiment in client.search_experiments():
    for run in client.search_runs([experiment.experiment_id]):
        print(run.info.run_id, len(client.get_metric_history(run.info.run_id, "loss")))
"""

# Accuracy on the 450 held-out digits of a 2-process run vs one process: they see the same
# images in a different order, so they may differ by a few images; README.md states this bound.
DDP_TOLERANCE = 0.02


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_torch_cnn_learns_the_digits_in_one_process_and_in_two(
    torch_project: tuple[Path, dict],
) -> None:
    """The CNN reaches >= 0.95 test accuracy in 10 epochs on the CPU; `make train NPROC=2`: 2 gloo
    processes, rank 0 alone prints and writes, the same accuracy."""
    dst, env = torch_project
    py = str(venv_python(dst / ".venv"))
    common = ["data=digits", "trainer.epochs=10", "trainer.batch_size=32"]
    out = timed_ok(
        "torch: 1 process (digits)",
        [py, "-m", f"{PKG}.train", *common, "models_dir=one", "tracking=none"],
        dst,
        env,
    )
    assert "CPU" in out and "epoch  10/10" in out, out
    one = metrics(dst, models="one")
    assert one["framework"] == "pytorch" and "test_accuracy" not in one, one
    runs_before = len(list((dst / "runs").iterdir()))
    store_before = run([py, "-c", MLFLOW_RUNS, "sqlite:///mlflow.db"], dst, env).stdout.split()
    args = "ARGS=trainer.batch_size=32 models_dir=two"
    out = timed_ok(
        "torch: make train NPROC=2 (digits)",
        ["make", "train", "NPROC=2", "DATASET=digits", "EPOCHS=10", args],
        dst,
        env,
    )
    assert "CPU, 2 processes (DistributedDataParallel, gloo)" in out, out
    for line in ("epoch  10/10", "saved "):
        assert out.count(line) == 1, out  # printed by rank 0 only
    two = metrics(dst, models="two")
    assert sorted(p.name for p in (dst / "two").iterdir()) == [  # rank 0's files only
        "digits_history.csv",
        "digits_metrics.json",
        "digits_pytorch.pt",
        "digits_train_scores.json",
    ]
    for models in ("one", "two"):  # the test images are evaluate's
        evaluate = [py, "-m", f"{PKG}.evaluate", "data=digits", f"models_dir={models}"]
        run([*evaluate, "tracking=none"], dst, env)
    accuracies = [evaluation(dst, models=m)["accuracy"] for m in ("one", "two")]
    TIMINGS["pytorch digits test accuracy, 1 vs 2 processes"] = accuracies
    assert min(accuracies) >= 0.95, accuracies
    assert abs(accuracies[1] - accuracies[0]) <= DDP_TOLERANCE, accuracies
    assert two["n_train"] == one["n_train"] and len(two["history"]) == 10
    # One run recorded (rank 0's): one run folder more, one MLflow run, with rank 0's numbers.
    assert len(list((dst / "runs").iterdir())) == runs_before + 1
    store = run([py, "-c", MLFLOW_RUNS, "sqlite:///mlflow.db"], dst, env).stdout.split()
    new_runs = store[: len(store) - len(store_before)]  # newest first
    assert new_runs == [two["tracking_run"], "10"], (store_before, store)


@pytest.mark.slow
def test_torchrun_ranks_end_with_identical_parameters(
    torch_project: tuple[Path, dict], tmp_path: Path
) -> None:
    dst, env = torch_project
    py = str(venv_python(dst / ".venv"))
    driver = tmp_path / "rank_parameters.py"
    driver.write_text(RANK_PARAMETERS.format(pkg=PKG))
    cmd = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(driver)]
    args = ["data=digits", "trainer.epochs=3", f"models_dir={tmp_path / 'models'}", "tracking=none"]
    run_env = {**env, "PARAMS_DIR": str(tmp_path)}
    timed_ok("torch: torchrun 2 processes, 3 epochs", [*cmd, *args], dst, run_env)
    compare = (
        "import sys, torch\n"
        "a, b = (torch.load(p, weights_only=True) for p in sys.argv[1:])\n"
        "assert a.keys() == b.keys() and len(a) == 8, sorted(a)\n"
        "print(all(torch.equal(a[k], b[k]) for k in a))\n"
    )
    ranks = [str(tmp_path / f"rank{r}.params") for r in (0, 1)]
    assert run([py, "-c", compare, *ranks], dst, env).stdout.strip() == "True"


# ---------------------------------------------------------------- sweeps and configuration (issue 35)

TRIAL_DONE = re.compile(r"^trial \d+: best_val_accuracy \d")
# 500 of the digits (as experiment=quick): a trial's cost is then mostly its own start-up and
# its tracking, which is what a sweep adds to training; the limit, a fixed override, reaches the
# best trial's preset too (best_config_trains).
SWEEP = ["make", "sweep", "DATASET=digits", "TRIALS=6", "ARGS=data.limit=500"]


def study_states(project: Path) -> dict[str, int]:
    """{state: trials} of every study in the project's optuna.db, read with sqlite3 itself."""
    with sqlite3.connect(project / "optuna.db") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())


def nested_finished_runs(project: Path) -> int:
    """Finished MLflow runs (mlflow.db) that are a sweep's children (mlflow.parentRunId)."""
    with sqlite3.connect(project / "mlflow.db") as db:
        query = (
            "SELECT COUNT(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
            "WHERE tags.key = 'mlflow.parentRunId' AND runs.status = 'FINISHED'"
        )
        return int(db.execute(query).fetchone()[0])


def best_config_trains(dst: Path, env: dict[str, str], label: str) -> None:
    """`make train ARGS=experiment=best` trains the digits with the best trial's settings."""
    best = yaml.safe_load((dst / "configs" / "experiment" / "best.yaml").read_text())
    assert best["defaults"] == [{"override /data": "digits"}], best
    timed_ok(f"{label}: make train ARGS=experiment=best", ["make", "train",
             "ARGS=experiment=best"], dst, env)  # fmt: skip
    m = metrics(dst)
    assert m["dataset"] == "digits" and m["epochs"] == best["trainer"]["epochs"], m
    assert best["data"] == {"limit": 500} and m["n_train"] + m["n_val"] == 500, (m, best)
    assert m["learning_rate"] == pytest.approx(best["trainer"]["learning_rate"]), (m, best)
    assert m["batch_size"] == best["trainer"]["batch_size"], (m, best)


@pytest.mark.slow
@posix_only("make, and a process group killed mid-sweep")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_uv_sweep_killed_after_two_trials_resumes_to_six(uv_project: tuple[Path, dict]) -> None:
    """`make sweep` is killed (SIGKILL, its whole process group) once two trials have completed;
    the same command again completes the study: exactly 6 completed trials, each a finished
    MLflow run nested under a sweep run; the best trial's preset trains."""
    dst, env = uv_project
    cmd = [*SWEEP, "EPOCHS=2"]
    proc = subprocess.Popen(cmd, cwd=dst, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    watchdog = threading.Timer(300, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    seen, done = [], 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            done += bool(TRIAL_DONE.match(line))
            if done == 2:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        watchdog.cancel()
        proc.wait()
    assert done == 2, "".join(seen[-40:])
    killed = study_states(dst)
    assert killed.get("COMPLETE") == 2 and killed.get("RUNNING", 0) <= 1, killed

    out = timed_ok("uv: make sweep (resumed)", cmd, dst, env)
    assert "2 of 6 trials completed; 4 to run" in out, out[-3000:]
    assert "6 trials completed; best: trial" in out, out[-3000:]
    assert study_states(dst)["COMPLETE"] == 6
    assert nested_finished_runs(dst) == 6
    best_config_trains(dst, env, "uv")


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_torch_sweep_of_six_trials_and_its_best_config(torch_project: tuple[Path, dict]) -> None:
    dst, env = torch_project
    out = timed_ok("torch: make sweep (6 trials, 1 epoch)", [*SWEEP, "EPOCHS=1"], dst, env)
    assert len([x for x in out.splitlines() if TRIAL_DONE.match(x)]) == 6, out[-3000:]
    assert study_states(dst) == {"COMPLETE": 6}
    best_config_trains(dst, env, "torch")


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
@pytest.mark.parametrize(
    "which",
    ["uv_project", "torch_project"],
)
def test_preset_dataset_wins_and_bad_overrides_are_one_line(
    which: str, request: pytest.FixtureRequest
) -> None:
    """`make train ARGS=experiment=quick` trains the preset's digits (no MNIST download); an
    unknown or out-of-range model option and a list of values are one line, no traceback,
    before any run folder."""
    dst, env = request.getfixturevalue(which)
    out = timed_ok(f"{which}: make train ARGS=experiment=quick", ["make", "train",
                   "ARGS=experiment=quick"], dst, env)  # fmt: skip
    m = metrics(dst)
    assert m["dataset"] == "digits" and m["epochs"] == 2 and m["n_train"] + m["n_val"] == 500, m
    command = out.splitlines()[0]  # make's echo: no data= of its own, the preset decides
    assert command.endswith("train experiment=quick") and "digits: 500 training" in out, out

    py = str(venv_python(dst / ".venv"))
    runs = dst / "runs"
    before = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    bad = {
        "+model.C=0.5": "unknown key 'model.C'",
        "model.hidden_units=0": "model.hidden_units=0: must be at least 1",
        "trainer.learning_rate=0.1,0.01": "make sweep",
    }
    for override, says in bad.items():
        result = run([py, "-m", f"{PKG}.train", "data=digits", override], dst, env, check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (override, result.stderr)
        assert says in lines[0] and "Traceback" not in result.stdout + result.stderr, lines
    after = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    assert after == before
