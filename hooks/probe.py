"""Sanity import, run by the NEW environment's Python: `python -I probe.py '<json>'`.

Imports the project's package (and proves the module found is the project's own source, given
as "source") and every runtime dependency the installed project declares
(its metadata, so edits to pyproject.toml count), each by its import name, and prints one JSON
report on stdout. For PyTorch and TensorFlow the report also says whether the framework is a CUDA
build, which GPUs it sees, and what that means for the project's accelerator (`gpu`).
Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 name: scikit_learn, Scikit.Learn -> scikit-learn."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str | None:
    """Distribution name of a PEP 508 requirement string."""
    m = NAME.match(req)
    return m.group(1) if m else None


def applies(req: str) -> bool:
    """Whether a Requires-Dist line applies here: not an extra, markers true (when evaluable)."""
    if ";" not in req:
        return True
    marker = req.split(";", 1)[1].strip()
    if re.search(r"\bextra\s*==", marker):
        return False
    try:
        from packaging.markers import Marker  # present in most envs, but not required
    except ImportError:
        return True
    try:
        return bool(Marker(marker).evaluate())
    except Exception:
        return True


def import_name(dist: str, hints: dict[str, str], top_levels: dict[str, list[str]]) -> str:
    """The module to import for distribution `dist`.

    Order: the template's explicit mapping (scikit-learn -> sklearn), then the top-level
    modules the installed distribution provides, then the name with dashes as underscores.
    """
    key = normalize(dist)
    if key in hints:
        return hints[key]
    guess = key.replace("-", "_")
    provided = [m for m in top_levels.get(key, []) if not m.startswith("_")]
    if guess in provided or not provided:
        return guess
    return sorted(provided, key=lambda m: (normalize(m) != key, len(m), m))[0]


def top_level_modules() -> dict[str, list[str]]:
    """Normalised distribution name -> its importable top-level modules."""
    result: dict[str, list[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            result.setdefault(normalize(dist), []).append(module)
    return result


def version_of(dist: str | None, module: Any) -> str:
    if dist:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", "?"))


def try_import(module: str, dist: str | None) -> dict[str, str]:
    row = {"module": module, "distribution": dist or "", "version": "", "error": ""}
    try:
        mod = importlib.import_module(module)
    except BaseException as exc:  # an import can raise anything, even SystemExit
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return row
    row["version"] = version_of(dist, mod)
    return row


def module_files(module: Any) -> list[str]:
    """Where a module was loaded from: its file, or a namespace package's folders."""
    file = getattr(module, "__file__", None)
    return [file] if file else [str(p) for p in getattr(module, "__path__", [])]


def own_package(package: str, distribution: str, source: str) -> dict[str, str]:
    """Import the project's package and prove it is the project's own: a module of the same name
    elsewhere (a dependency such as joblib, the running script for __main__, a stray folder on
    sys.path) would import fine and say nothing about the project."""
    row = try_import(package, distribution)
    if row["error"] or not source:
        return row
    expected = Path(source).resolve()
    found = module_files(sys.modules.get(package))
    if not found or not all(Path(f).resolve().is_relative_to(expected) for f in found):
        where = ", ".join(found) or "nowhere (no file)"
        row["error"] = (
            f"`import {package}` found {where}, not the project's {expected}: another module of "
            f"that name shadows the project's package; rename the package (package_name) to a "
            f"name no installed module has, e.g. {package.strip('_') or 'my'}_project"
        )
    return row


def probe(
    package: str,
    distribution: str,
    hints: dict[str, str],
    source: str = "",
    gpu: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`gpu`: the project's accelerator, env_manager and cuda_index, for the GPU check."""
    report: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable}
    rows = [own_package(package, distribution, source)]
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        report["error"] = f"the project ({distribution}) is not installed in this environment"
        requires = []
    top = top_level_modules()
    seen = {package}
    for req in requires:
        name = requirement_name(req)
        if not name or not applies(req):
            continue
        module = import_name(name, hints, top)
        if module not in seen:
            seen.add(module)
            rows.append(try_import(module, name))
    report["rows"] = rows
    imported = {r["module"] for r in rows if not r["error"]}
    framework = next((m for m in ("torch", "tensorflow") if m in imported), None)
    if gpu and framework:
        report["gpu"] = gpu_check(
            framework, gpu["accelerator"], gpu["env_manager"], gpu["cuda_index"]
        )
    return report


def cuda_library_bytes() -> int:
    """Disk space of the NVIDIA CUDA wheels (nvidia-*) installed next to the framework."""
    total = 0
    for dist in metadata.distributions():
        if normalize(dist.metadata["Name"] or "").startswith("nvidia-"):
            total += sum(f.size or 0 for f in dist.files or [])
    return total


def framework_gpu_facts(module: str) -> dict[str, Any]:
    """The framework's CUDA build (None for a CPU-only build) and the GPUs it sees."""
    facts: dict[str, Any] = {"framework": module, "cuda_build": None, "gpus": []}
    if module == "torch":
        import torch

        facts["version"] = torch.__version__
        facts["cuda_build"] = torch.version.cuda
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
    facts["cuda_library_bytes"] = cuda_library_bytes()
    return facts


def cuda_fix(module: str, manager: str, cuda_index: str) -> str:
    """The command that puts the framework's CUDA build into this environment."""
    if manager.startswith("conda"):
        package = "pytorch-gpu" if module == "torch" else "tensorflow-gpu"
        return f"conda install -p {sys.prefix} -c conda-forge {package}"
    if module == "tensorflow":
        return f'{sys.executable} -m pip install "tensorflow[and-cuda]"   (Linux and WSL2 only)'
    if manager == "uv":
        return (
            f"uv sync --reinstall-package torch   (pyproject.toml takes torch from {cuda_index}; "
            "macOS has no CUDA build)"
        )
    return f"{sys.executable} -m pip install --force-reinstall --index-url {cuda_index} torch"


def problem(level: str, what: str, fix: str) -> dict[str, str]:
    return {"level": level, "what": what, "fix": fix}


def gpu_check(module: str, accelerator: str, manager: str, cuda_index: str) -> dict[str, Any]:
    """Facts about `module`'s GPU support, and `problems` (level error/warning, what, fix)."""
    try:
        facts = framework_gpu_facts(module)
    except Exception as exc:  # a broken CUDA install can fail here rather than at import
        what = f"{module} cannot report its GPU support: {exc}"
        return {"framework": module, "problems": [problem("error", what, "make env")]}
    problems = []
    size = facts["cuda_library_bytes"] / 1e9
    if accelerator == "cuda" and not facts["cuda_build"]:
        what = f"{module} {facts['version']} is a CPU-only build in a CUDA project: no GPU use"
        problems.append(problem("error", what, cuda_fix(module, manager, cuda_index)))
    elif accelerator == "cuda" and not facts["gpus"]:
        what = (
            f"{module} is a CUDA {facts['cuda_build']} build but sees no GPU: it trains on the CPU"
        )
        fix = (
            "check the NVIDIA driver with `nvidia-smi` (in a container: run it with --gpus all "
            "and the NVIDIA Container Toolkit)"
        )
        problems.append(problem("warning", what, fix))
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
        problems.append(problem("warning", what, fix))
    facts["problems"] = problems
    return facts


MARKER = "ENVSETUP-REPORT "


def main(argv: list[str]) -> int:
    args = json.loads(argv[1])
    report = probe(
        args["package"],
        args["distribution"],
        args.get("hints", {}),
        args.get("source", ""),
        args.get("gpu"),
    )
    # A marker, because an imported module may print to stdout too.
    print(MARKER + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
