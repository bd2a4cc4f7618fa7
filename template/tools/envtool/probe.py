"""The one probe, run by the ENVIRONMENT's Python in isolated mode: `python -I probe.py '<json>'`.

Set-up (sanity import), doctor and the Docker build all run this file and read its one JSON
report: the interpreter, every installed distribution, broken requirements (what `pip check`
finds), the project's declared requirements against what is installed, each import with the file
it came from, the pins of a lock file, and for PyTorch and TensorFlow whether the framework is a
CUDA build, which GPUs it sees and what that means for the project's accelerator (`gpu`). The parsing is real (`packaging`, `tomllib`/`tomli`:
every generated environment has them through pytest); without them only the imports run. It
imports nothing else of the tool, so it can be copied into an image alone. Exit status 1 when an
import fails or a requirement is broken, so a Docker build step fails on it.

Arguments (JSON): package, distribution, hints {distribution: module}, and optionally
source (the package's folder: the import must come from there), gpu {accelerator, env_manager,
cuda_index}, imports [module...] (used when the distribution is not installed or `packaging` is
missing), provided {distribution: module} (a conda hybrid's conda-owned packages the project does
not declare, such as the CUDA framework build: imported too),
project (folder with pyproject.toml), requirement_files [...], lock_file (poetry.lock,
requirements.lock).
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

MARKER = "ENVTOOL-PROBE "

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a broken environment: the imports are still worth reporting
    Requirement = None  # type: ignore[assignment,misc]

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:
        tomllib = None  # type: ignore[assignment]


def canonical(name: str) -> str:
    return canonicalize_name(name) if Requirement is not None else name.lower()


def parse(text: str) -> Requirement | None:
    """A requirement that applies here (markers true, no extra), else None."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    return req


def distributions() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist)
    return found


def broken(dists: dict[str, metadata.Distribution], own: str) -> list[str]:
    """What `pip check` reports, from the installed metadata (uv environments have no pip)."""
    problems = []
    for key, dist in sorted(dists.items()):
        if key == own:  # its own requirements are the `declared` section
            continue
        for text in dist.requires or []:
            req = parse(text)
            have = dists.get(canonical(req.name)) if req else None
            label = f"{dist.metadata['Name']} {dist.version} requires {req}"
            if req and have is None:
                problems.append(f"{label}, which is not installed")
            elif req and have and not req.specifier.contains(have.version, prereleases=True):
                problems.append(f"{label}, but {have.version} is installed")
    return problems


def declared_requirements(project: Path, requirement_files: list[str]) -> list[tuple[str, str]]:
    """(group, requirement) from pyproject.toml ([project], PEP 735 dev group, Poetry's dev
    group) and the given requirements files."""
    found: list[tuple[str, str]] = []
    if tomllib is not None and (project / "pyproject.toml").is_file():
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        found += [("runtime", r) for r in data.get("project", {}).get("dependencies", [])]
        found += [("dev", r) for r in data.get("dependency-groups", {}).get("dev", [])]
        poetry = data.get("tool", {}).get("poetry", {}).get("group", {}).get("dev", {})
        for name, spec in poetry.get("dependencies", {}).items():
            constraint = spec if isinstance(spec, str) and spec[:1] in "<>=!~" else ""
            found.append(("dev", name + constraint))
    for name in requirement_files:
        group = "dev" if "dev" in name else "runtime"
        for line in (project / name).read_text(encoding="utf-8").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith(("#", "-")):
                found.append((group, line))
    return found


def check_declared(
    declared: list[tuple[str, str]],
    dists: dict[str, metadata.Distribution],
    pins: dict[str, list[str]] | None,
) -> list[dict[str, Any]]:
    """Each declared requirement: installed version, whether it fits, and (given a lock's pins)
    whether the lock pins a fitting version."""
    rows, seen = [], set()
    for group, text in declared:
        req = parse(text)
        if req is None or canonical(req.name) in seen:
            continue
        seen.add(canonical(req.name))
        dist = dists.get(canonical(req.name))
        version = dist.version if dist else ""
        ok = bool(dist) and req.specifier.contains(version, prereleases=True)
        row = {
            "requirement": text,
            "name": req.name,
            "group": group,
            "installed": version,
            "ok": ok,
        }
        if pins is not None:
            locked = pins.get(canonical(req.name), [])
            row["locked"] = any(req.specifier.contains(v, prereleases=True) for v in locked)
        rows.append(row)
    return rows


def lock_pins(path: Path) -> dict[str, list[str]]:
    """Package -> the versions a poetry.lock (entries whose markers apply) or a pip freeze pins."""
    pins: dict[str, list[str]] = {}
    if path.name == "poetry.lock" and tomllib is not None:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("package", [])
        for entry in entries:
            pins.setdefault(canonical(entry["name"]), [])
        for entry in entries:
            markers = entry.get("markers")
            if isinstance(markers, str) and parse(f"x; {markers}") is None:
                continue
            pins[canonical(entry["name"])].append(str(entry.get("version", "")))
        return pins
    for line in path.read_text(encoding="utf-8").splitlines():
        req = parse(line) if line.strip() and not line.lstrip().startswith(("#", "-")) else None
        pinned = [s.version for s in req.specifier if s.operator in ("==", "===")] if req else []
        if req and pinned:
            pins.setdefault(canonical(req.name), []).extend(pinned)
    return pins


def module_for(dist: metadata.Distribution, name: str, hints: dict[str, str]) -> str:
    """The module to import for a distribution: the template's mapping (scikit-learn ->
    sklearn), else its own name if it provides it, else its first top-level package."""
    key = canonical(name)
    if key in hints:
        return hints[key]
    guess = key.replace("-", "_")
    top = (dist.read_text("top_level.txt") or "").split()
    if not top:  # not built by setuptools: the packages and modules among its files
        parts = [f.parts for f in dist.files or []]
        top = sorted({p[0] for p in parts if len(p) > 1 and p[-1] == "__init__.py"})
        top += sorted({p[0][:-3] for p in parts if len(p) == 1 and p[0].endswith(".py")})
    top = [t for t in top if t.isidentifier() and not t.startswith("_")]
    return guess if guess in top or not top else top[0]


def try_import(module: str, dist: str, version: str) -> dict[str, str]:
    row = {"module": module, "distribution": dist, "version": version, "error": "", "origin": ""}
    try:
        imported = importlib.import_module(module)
    except BaseException as exc:  # an import can raise anything, even SystemExit
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return row
    row["origin"] = str(getattr(imported, "__file__", "") or "")
    row["version"] = version or str(getattr(imported, "__version__", ""))
    return row


def cuda_library_bytes() -> int:
    """Disk space of the NVIDIA CUDA wheels (nvidia-*) installed next to the framework."""
    total = 0
    for dist in metadata.distributions():
        if canonical(dist.metadata["Name"] or "").startswith("nvidia-"):
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


def own_package(row: dict[str, str], source: str) -> dict[str, str]:
    """Prove the imported package is the project's own source: a module of the same name
    elsewhere (a dependency such as joblib, the running script for __main__, a stray folder on
    sys.path) would import fine and say nothing about the project."""
    module = sys.modules.get(row["module"])
    file = getattr(module, "__file__", None)
    found = [file] if file else [str(p) for p in getattr(module, "__path__", [])]
    expected = Path(source).resolve()
    if row["error"] or (found and all(Path(f).resolve().is_relative_to(expected) for f in found)):
        return row
    package = row["module"]
    row["error"] = (
        f"`import {package}` found {', '.join(found) or 'nowhere (no file)'}, not the project's "
        f"{expected}: another module of that name shadows the project's package; rename the "
        f"package (package_name) to a name no installed module has, e.g. "
        f"{package.strip('_') or 'my'}_project"
    )
    return row


def probe(args: dict[str, Any]) -> dict[str, Any]:
    package, distribution = args["package"], args["distribution"]
    hints = {canonical(k): v for k, v in args.get("hints", {}).items()}
    report: dict[str, Any] = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "errors": [],
    }
    if Requirement is None:
        report["errors"].append("`packaging` is not installed: only the imports were checked")
        modules = [(package, distribution, ""), *((m, m, "") for m in args.get("imports", []))]
        report["imports"] = [try_import(*m) for m in dict.fromkeys(modules)]
        if args.get("source"):
            report["imports"][0] = own_package(report["imports"][0], args["source"])
        return report
    dists = distributions()
    own = canonical(distribution)
    report["distributions"] = {k: d.version for k, d in sorted(dists.items())}
    report["broken"] = broken(dists, own)
    modules = {package: (distribution, dists[own].version if own in dists else "")}
    if own in dists:
        for text in dists[own].requires or []:
            req = parse(text)
            dist = dists.get(canonical(req.name)) if req else None
            if req and dist:
                modules.setdefault(module_for(dist, req.name, hints), (req.name, dist.version))
            elif req:
                report["broken"].append(f"{distribution} requires {req}, which is not installed")
        for name, module in args.get("provided", {}).items():
            dist = dists.get(canonical(name))
            modules.setdefault(module, (name, dist.version if dist else ""))
    else:
        report["errors"].append(f"the project ({distribution}) is not installed")
        modules.update({m: (m, "") for m in args.get("imports", [])})
    project = Path(args["project"]) if args.get("project") else None
    if project is not None:
        pyproject = (
            tomllib.loads((project / "pyproject.toml").read_text("utf-8")) if tomllib else {}
        )
        report["requires_python"] = pyproject.get("project", {}).get("requires-python", "")
        spec = Requirement(f"python{report['requires_python']}").specifier
        report["python_ok"] = spec.contains(report["python"], prereleases=True)
        lock = project / args["lock_file"] if args.get("lock_file") else None
        if lock is not None and lock.is_file():
            report["lock"] = lock_pins(lock)
        declared = declared_requirements(project, args.get("requirement_files", []))
        report["declared"] = check_declared(declared, dists, report.get("lock"))
    report["imports"] = [try_import(m, d, v) for m, (d, v) in modules.items()]
    if args.get("source"):
        report["imports"][0] = own_package(report["imports"][0], args["source"])
    imported = {r["module"] for r in report["imports"] if not r["error"]}
    framework = next((m for m in ("torch", "tensorflow") if m in imported), None)
    gpu = args.get("gpu")
    if gpu and framework:
        report["gpu"] = gpu_check(
            framework, gpu["accelerator"], gpu["env_manager"], gpu["cuda_index"]
        )
    return report


def failed(report: dict[str, Any]) -> bool:
    return bool(report.get("broken")) or any(r["error"] for r in report["imports"])


def main(argv: list[str]) -> int:
    report = probe(json.loads(argv[1]))
    # Behind a marker: an imported module may print to stdout too.
    print(MARKER + json.dumps(report), flush=True)
    for row in report["imports"]:
        print(f"{row['module']} {row['version'] or '-'}: {row['error'] or 'ok'}", file=sys.stderr)
    for line in report.get("broken", []):
        print(f"broken: {line}", file=sys.stderr)
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
