"""GPU truth in the probe (tools/envtool/gpu.py, run by probe.py), shown by the set-up and the doctor.

Unit tests cover every verdict with the framework's facts stood in (no GPU or CUDA build exists
here); the slow tests generate real PyTorch projects with `copier copy --trust` and the real
CPU build of torch (the local wheel in pip's find-links): the CPU project passes, the CUDA
project reports the CPU-only build as an error with the fix and keeps every file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from envtool import gpu, probe
from envtool.config import Config
from envtool.manager import manager_class

from tests.conftest import (
    COMMANDS,
    COPIER_YML,
    copier_copy,
    env_without_dev_venv,
    find_python,
    generated_files_in_place,
    lock_tool,
    output,
    tool_bin,
)

# PyTorch's CUDA wheel index, as copier.yml derives it from its one CUDA version.
CUDA_INDEX = "https://download.pytorch.org/whl/cu" + COPIER_YML["cuda_version"]["default"].replace(
    ".", ""
)


def facts(**overrides: Any) -> dict[str, Any]:
    base = {
        "framework": "torch",
        "version": "2.13.0+cpu",
        "cuda_build": None,
        "gpus": [],
        "cuda_library_bytes": 0,
    }
    return {**base, **overrides}


def check(
    monkeypatch: pytest.MonkeyPatch, accelerator: str, manager: str = "venv", **f: Any
) -> dict[str, Any]:
    """gpu.gpu_check with the framework's facts replaced by `f` (on top of a CPU build), and the
    fix for a CPU-only build from `manager`'s module."""
    monkeypatch.setattr(gpu, "framework_gpu_facts", lambda module: facts(**f))
    module = f.get("framework", "torch")
    config = Config(Path("/p"), manager, "3.12", "p", "p", COMMANDS, lock_tool(manager),
                    cuda_index=CUDA_INDEX)  # type: ignore[arg-type]  # fmt: skip
    return gpu.gpu_check(module, accelerator, gpu.cuda_fix(manager_class(manager)(config), module))


def test_cpu_build_in_cpu_project_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check(monkeypatch, "cpu")["problems"] == []


@pytest.mark.parametrize(
    ("manager", "fix"),
    [
        ("venv", f"-m pip install --force-reinstall --index-url {CUDA_INDEX} torch"),
        ("poetry", f"-m pip install --force-reinstall --index-url {CUDA_INDEX} torch"),
        (
            "uv",
            f"uv sync --reinstall-package torch   (pyproject.toml takes torch from {CUDA_INDEX}",
        ),
        ("conda", "-c conda-forge pytorch-gpu"),
    ],
)
def test_cpu_build_in_cuda_project_is_an_error_naming_the_index(
    monkeypatch: pytest.MonkeyPatch, manager: str, fix: str
) -> None:
    [problem] = check(monkeypatch, "cuda", manager)["problems"]
    assert problem["level"] == "error"
    assert "torch 2.13.0+cpu is a CPU-only build in a CUDA project" in problem["what"]
    assert fix in problem["fix"]


def test_cuda_build_without_a_gpu_is_a_warning_naming_the_driver_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [problem] = check(monkeypatch, "cuda", version="2.13.0+cu128", cuda_build="12.8")["problems"]
    assert problem["level"] == "warning" and "sees no GPU" in problem["what"]
    assert "nvidia-smi" in problem["fix"]


def test_cuda_build_with_a_gpu_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    result = check(monkeypatch, "cuda", cuda_build="12.8", gpus=["NVIDIA A100-SXM4-40GB"])
    assert result["problems"] == []


def test_cuda_build_in_cpu_project_is_a_warning_about_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = check(
        monkeypatch, "cpu", version="2.13.0+cu128", cuda_build="12.8", cuda_library_bytes=4.3e9
    )
    [problem] = result["problems"]
    assert problem["level"] == "warning"
    assert "CPU project is a CUDA build (4.3 GB of CUDA libraries" in problem["what"]
    assert "make env" in problem["fix"]


def test_tensorflow_without_cuda_libraries_is_fine_in_a_cpu_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every Linux TensorFlow wheel is a CUDA build; only tensorflow[and-cuda]'s libraries cost."""
    assert check(monkeypatch, "cpu", framework="tensorflow", cuda_build="12.5")["problems"] == []
    result = check(
        monkeypatch, "cpu", framework="tensorflow", cuda_build="12.5", cuda_library_bytes=3e9
    )
    assert [p["level"] for p in result["problems"]] == ["warning"]
    [problem] = check(monkeypatch, "cuda", "uv", framework="tensorflow")["problems"]
    assert problem["level"] == "error" and '"tensorflow[and-cuda]"' in problem["fix"]


def test_show_prints_the_build_and_returns_the_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The set-up's way (no report: errors printed too, then raised) and the doctor's."""
    warning = check(monkeypatch, "cuda", cuda_build="12.8", version="2.13.0+cu128")
    assert gpu.show(warning, print, None) == []
    error = check(monkeypatch, "cuda")
    assert gpu.show(error, print, None) == error["problems"]
    out = capsys.readouterr().out
    assert "torch 2.13.0+cu128: CUDA 12.8 build; GPUs visible: none" in out
    assert "WARNING: torch is a CUDA 12.8 build but sees no GPU" in out
    assert "torch 2.13.0+cpu: CPU-only build; GPUs visible: none" in out
    assert "ERROR: torch 2.13.0+cpu is a CPU-only build in a CUDA project" in out
    problems: list[tuple[str, str]] = []
    assert (
        gpu.show(error, print, lambda what, fix: problems.append((what, fix))) == error["problems"]
    )
    assert problems == [(error["problems"][0]["what"], error["problems"][0]["fix"])]
    assert "ERROR" not in capsys.readouterr().out  # the doctor's report lists it as a problem


def test_probe_reports_gpu_only_for_an_imported_framework() -> None:
    args = {"accelerator": "cuda", "fix": {"torch": "x", "tensorflow": "y"}}
    report = probe.probe({"package": "json", "distribution": "no-such-dist-for-probe", "gpu": args})
    assert "gpu" not in report  # no torch or tensorflow among the imports


# ---------------------------------------------------------------- real projects (slow)


def torch_project(template: Path, tmp: Path, accelerator: str) -> tuple[Path, str]:
    """`copier copy --trust` of a venv PyTorch project for `accelerator`; the set-up runs for real."""
    if not find_python("3.11"):
        pytest.skip("the local CPU wheel of torch is for Python 3.11, which is not installed")
    constraints = tmp / "constraints.txt"
    constraints.write_text("torch==2.13.0+cpu\n", encoding="utf-8")
    # The PyTorch index is unreachable here; the CPU wheel in pip's find-links is the build.
    env = env_without_dev_venv(tool_bin(tmp), PIP_CONSTRAINT=str(constraints), PIP_RETRIES="0")
    dst = tmp / f"gpu-{accelerator}"
    proc = copier_copy(
        template,
        dst,
        env,
        project_name=f"GPU {accelerator}",
        env_manager="venv",
        python_version="3.11",
        ml_framework="pytorch",
        accelerator=accelerator,
        example="none",
        git_init="false",
    )
    assert proc.returncode == 0, output(proc)  # never non-zero: copier would delete the project
    return dst, output(proc)


def doctor(project: Path) -> subprocess.CompletedProcess[str]:
    """The doctor, as `make doctor` runs it: the project's tools/envtool."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        ["python3", project / "tools" / "envtool", "doctor"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_cpu_project_with_the_cpu_build_passes(template: Path, tmp_path: Path) -> None:
    project, text = torch_project(template, tmp_path, "cpu")
    # The GPU check is asked for by data (envtool.json), and the project has its module.
    assert json.loads((project / "tools" / "envtool.json").read_text())["gpu_check"] is True
    assert (project / "tools" / "envtool" / "gpu.py").is_file()
    assert "torch 2.13.0+cpu: CPU-only build; GPUs visible: none" in text, text
    assert "Environment ready (venv)" in text
    out = doctor(project)
    assert "ok    torch fits accelerator=cpu" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
def test_cuda_project_with_the_cpu_build_fails_with_the_fix(template: Path, tmp_path: Path) -> None:
    project, text = torch_project(template, tmp_path, "cuda")
    python = project / ".venv" / "bin" / "python"
    assert (
        "FAILED at step 'sanity import': GPU check failed: torch 2.13.0+cpu is a CPU-only build "
        "in a CUDA project" in text
    ), text
    assert f"fix: {python} -m pip install --force-reinstall --index-url {CUDA_INDEX} torch" in text
    assert "Environment ready" not in text
    generated_files_in_place(project, "requirements.txt", "Dockerfile")
    assert python.exists()  # the environment is kept too: the fix reinstalls one package
    out = doctor(project)
    assert out.returncode == 1
    assert "FAIL  torch 2.13.0+cpu is a CPU-only build in a CUDA project" in out.stdout, out.stdout
    assert f"--index-url {CUDA_INDEX} torch" in out.stdout
