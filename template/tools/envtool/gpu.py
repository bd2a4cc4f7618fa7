"""GPU truth (PyTorch and TensorFlow projects only): gpu_check, run inside the environment by
probe.py, finds the framework's CUDA build, the GPUs it sees, and what that means for the
project's accelerator (the fix for a CPU-only build: cuda_fix, by the project's manager); the
set-up and the doctor show its verdict."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

FRAMEWORKS = ("torch", "tensorflow")  # the frameworks whose CUDA build gpu_check checks


def cuda_fix(manager: Any, module: str) -> str:
    """The command that puts the framework's CUDA build into `manager`'s environment."""
    if manager.name.startswith("conda"):  # conda-forge's GPU build, into the named env
        package = "pytorch-gpu" if module == "torch" else "tensorflow-gpu"
        return f"conda install -n {manager.config.project_slug} -c conda-forge {package}"
    pip = f"{manager.env_python()} -m pip install"
    if module == "tensorflow":
        return f'{pip} "tensorflow[and-cuda]"   (Linux and WSL2 only)'
    if manager.name == "uv":
        return (
            f"{manager.tool_command()} sync --reinstall-package torch   (pyproject.toml takes torch "
            f"from {manager.config.cuda_index}; macOS has no CUDA build)"
        )
    return f"{pip} --force-reinstall --index-url {manager.config.cuda_index} torch"


def framework_gpu_facts(module: str) -> dict[str, Any]:
    """The framework's CUDA build (None for a CPU-only build), the GPUs it sees, and the disk
    space of the NVIDIA CUDA wheels (nvidia-*) installed next to it."""
    facts: dict[str, Any] = {"framework": module, "cuda_build": None, "gpus": []}
    if module == "torch":
        import torch

        facts.update(version=torch.__version__, cuda_build=torch.version.cuda)
        if torch.cuda.is_available():
            facts["gpus"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
    else:
        import tensorflow as tf

        facts["version"] = tf.__version__
        if tf.test.is_built_with_cuda():
            facts["cuda_build"] = tf.sysconfig.get_build_info().get("cuda_version", "yes")
        facts["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    nvidia = [
        d
        for d in metadata.distributions()
        if (d.metadata["Name"] or "").lower().replace("_", "-").startswith("nvidia-")
    ]
    facts["cuda_library_bytes"] = sum(f.size or 0 for d in nvidia for f in d.files or [])
    return facts


def gpu_check(module: str, accelerator: str, build_fix: str) -> dict[str, Any]:
    """Facts about `module`'s GPU support, and `problems` (level error/warning, what, fix)."""
    try:
        facts = framework_gpu_facts(module)
    except Exception as exc:  # a broken CUDA install can fail here rather than at import
        what = f"{module} cannot report its GPU support: {exc}"
        return {
            "framework": module,
            "problems": [{"level": "error", "what": what, "fix": "make env"}],
        }
    problems = []
    size = facts["cuda_library_bytes"] / 1e9
    if accelerator == "cuda" and not facts["cuda_build"]:
        what = f"{module} {facts['version']} is a CPU-only build in a CUDA project: no GPU use"
        problems.append({"level": "error", "what": what, "fix": build_fix})
    elif accelerator == "cuda" and not facts["gpus"]:
        what = (
            f"{module} is a CUDA {facts['cuda_build']} build but sees no GPU: it trains on the CPU"
        )
        fix = (
            "check the NVIDIA driver with `nvidia-smi` (in a container: run it with --gpus all "
            "and the NVIDIA Container Toolkit)"
        )
        problems.append({"level": "warning", "what": what, "fix": fix})
    # Linux TensorFlow wheels are all CUDA builds; only the CUDA libraries ([and-cuda]) cost space.
    elif accelerator == "cpu" and (size >= 0.1 or (module == "torch" and facts["cuda_build"])):
        what = (
            f"{module} {facts['version']} in this CPU project is a CUDA build "
            f"({size:.1f} GB of CUDA libraries it does not need)"
        )
        fix = (
            f"delete the environment ({sys.prefix}) and run `make env`: the project installs the "
            "CPU build (for a GPU, generate the project with accelerator=cuda)"
        )
        problems.append({"level": "warning", "what": what, "fix": fix})
    return {**facts, "problems": problems}


def show(
    gpu: dict[str, Any], info: Callable[[str], None], problem: Callable[[str, str], None] | None
) -> list[dict[str, str]]:
    """Show the build, GPUs and warnings with `info` (errors with `problem`, when given: the
    doctor's report); return the errors."""
    if "version" in gpu:  # absent when the framework could not report
        build = f"CUDA {gpu['cuda_build']} build" if gpu["cuda_build"] else "CPU-only build"
        gpus = ", ".join(gpu["gpus"]) or "none"
        info(f"{gpu['framework']} {gpu['version']}: {build}; GPUs visible: {gpus}")
    errors = [p for p in gpu["problems"] if p["level"] == "error"]
    for p in gpu["problems"]:
        if problem and p in errors:
            problem(p["what"], p["fix"])
        else:
            info(f"{p['level'].upper()}: {p['what']}\n      fix: {p['fix']}")
    return errors


def doctor_section(report: Any, gpu: dict[str, Any], accelerator: str) -> None:
    """The doctor's GPU section: the verdict, or that the build fits the accelerator."""
    report.section(f"GPU ({gpu['framework']}, accelerator={accelerator})")
    show(gpu, report.info, report.problem)
    if not gpu["problems"]:
        report.ok(f"{gpu['framework']} fits accelerator={accelerator}")
