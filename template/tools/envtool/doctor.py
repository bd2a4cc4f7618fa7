"""`doctor`: is the project's environment there, complete, consistent and in step with its lock?

Runs on any Python (it needs nothing but JSON): what needs parsing runs inside the environment,
in the probe. Every problem comes with the command that fixes it; exit status 1 on a problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import probe as probe_module
from .base import Config, Manager, ToolError, query, say
from .checks import Report, last_line
from .managers import manager_for


def run_probe(manager: Manager, *, full: bool = False) -> dict[str, Any]:
    """Run probe.py with the environment's Python (-I: neither the project folder nor
    PYTHONPATH may stand in for the installed package) and return its JSON report."""
    config = manager.config
    args: dict[str, Any] = {
        "package": config.package_name,
        "distribution": config.project_slug,
        "hints": config.import_hints,
        "imports": [d["import"] for d in config.dependencies if d.get("import")],
        "provided": {
            d["name"]: d["import"] for d in config.dependencies if d.get("owner") == "conda"
        },
        # The editable install's source: the imported package must be this folder.
        "source": str(config.project / "src" / config.package_name),
        "gpu": {
            "accelerator": config.accelerator,
            "env_manager": manager.name,
            "cuda_index": config.cuda_index,
        },
    }
    if full:
        args["project"] = str(config.project)
        args["requirement_files"] = [
            f for f in manager.requirement_files if (config.project / f).is_file()
        ]
        if manager.pins_lock:
            args["lock_file"] = manager.lock_file
    python = manager.env_python()
    cmd = [python, "-I", Path(probe_module.__file__).resolve(), json.dumps(args)]
    # Exit status 1 only says that an import failed: the report says which.
    _, out, err = query(cmd, config.project, timeout=900)
    lines = [line for line in out.splitlines() if line.startswith(probe_module.MARKER)]
    if not lines:
        raise ToolError("the probe printed no report", why=(out + err)[-2000:])
    report: dict[str, Any] = json.loads(lines[-1][len(probe_module.MARKER) :])
    return report


def active_environment() -> Path | None:
    """The environment this shell has activated, if any (conda's base, which `conda init`
    activates in every shell, does not count: it is no choice the user made)."""
    conda = (
        os.environ.get("CONDA_PREFIX")
        if os.environ.get("CONDA_DEFAULT_ENV", "base") != "base"
        else None
    )
    active = os.environ.get("VIRTUAL_ENV") or conda
    return Path(active) if active else None


def same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_environment(report: Report, manager: Manager) -> Path | None:
    """The environment's Python, or None (a problem) when there is none."""
    report.section("Environment")
    try:
        python = manager.env_python()
    except ToolError as exc:
        report.problem(exc.what, manager.fix_env())
        return None
    if not python.exists():
        report.problem(
            f"the project's environment does not exist ({manager.location()})", manager.fix_env()
        )
        return None
    report.ok(f"the project's environment: {manager.location()}")
    active = active_environment()
    prefix = python.parent.parent if python.parent.name in ("bin", "Scripts") else python.parent
    if active is not None and not same_path(active, prefix):
        commands = manager.config.commands
        report.problem(
            f"this shell's active environment ({active}) is not the project's environment "
            f"({prefix}): `python` in this shell will not see the project's packages",
            f"{commands['activate']}; or run commands with `{manager.typed(commands['run'])}`",
        )
    return python


def check_probe(report: Report, manager: Manager, found: dict[str, Any]) -> None:
    config = manager.config
    fix_env = manager.fix_env()
    report.section("Python")
    report.info(f"Python {found['python']} at {found['executable']}")
    for error in found.get("errors", []):
        report.problem(error, fix_env)
    if found.get("python_ok") is False:
        report.problem(
            f"the environment has Python {found['python']}, but pyproject.toml requires "
            f"{found['requires_python']}",
            f"rebuild the environment with Python {config.python_version}: delete it, then "
            f"{fix_env}",
        )
    elif "python_ok" in found:
        report.ok(f"Python {found['python']} satisfies requires-python {found['requires_python']}")
    report.section("Declared dependencies")
    declared = found.get("declared", [])
    for row in declared:
        if not row["installed"]:
            report.problem(
                f"{row['name']} is declared ({row['requirement']}) but not installed", fix_env
            )
        elif not row["ok"]:
            report.problem(
                f"{row['name']} {row['installed']} is installed, but the project needs "
                f"{row['requirement']}",
                fix_env,
            )
    good = sum(1 for row in declared if row["ok"])
    report.ok(f"{good} of {len(declared)} declared dependencies installed in a suitable version")
    report.section("Installed packages agree with each other (pip check)")
    for line in found.get("broken", []):
        report.problem(line, fix_env)
    if not found.get("broken"):
        report.ok(
            f"{len(found.get('distributions', {}))} installed distributions, no broken requirements"
        )
    report.section("Imports")
    for row in found["imports"]:
        if not row["error"]:
            report.ok(f"import {row['module']}")
        elif row["module"] == config.package_name:
            report.problem(f"import {row['module']} fails: {row['error']}", fix_env)
        else:
            fix = manager.fix_import(row["distribution"], row["version"])
            report.problem(f"import {row['module']} fails: {row['error']}", fix)


def check_gpu(report: Report, config: Config, gpu: dict[str, Any]) -> None:
    """The framework's CUDA build and GPUs against the project's accelerator (the probe's)."""
    report.section(f"GPU ({gpu['framework']}, accelerator={config.accelerator})")
    if "version" in gpu:
        build = f"CUDA {gpu['cuda_build']} build" if gpu["cuda_build"] else "CPU-only build"
        gpus = ", ".join(gpu["gpus"]) or "none"
        report.info(f"{gpu['framework']} {gpu['version']}: {build}; GPUs visible: {gpus}")
    for p in gpu["problems"]:
        if p["level"] == "error":
            report.problem(p["what"], p["fix"])
        else:
            report.info(f"WARNING: {p['what']}\n        fix: {p['fix']}")
    if not gpu["problems"]:
        report.ok(f"{gpu['framework']} fits accelerator={config.accelerator}")


def doctor(project: Path) -> int:
    report = Report()
    try:
        config = Config.load(project)
        manager = manager_for(config)
    except ToolError as exc:
        report.problem(exc.what, exc.fix or "run the doctor in the project folder")
        return report.summary()
    say(f"{config.project_slug}: environment doctor ({manager.name})")
    found: dict[str, Any] | None = None
    python = check_environment(report, manager)
    if python is not None:
        try:
            found = run_probe(manager, full=True)
        except ToolError as exc:
            report.problem(f"{exc.what}: {last_line(exc.why)}", manager.fix_env())
        if found is not None:
            check_probe(report, manager, found)
            if found.get("gpu"):
                check_gpu(report, config, found["gpu"])
    manager.check_lock(report, found)
    return report.summary()
