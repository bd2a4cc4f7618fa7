"""`doctor`: is the project's environment there, complete, consistent and in step with its lock?
Each problem comes with the command that fixes it, and exit status 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import probe as probe_module
from .config import Config
from .manager import Manager, manager_for
from .probe import ProbeReport
from .report import Report, last_line
from .running import ToolError, query, say


def run_probe(manager: Manager, *, full: bool = False) -> ProbeReport:
    """Run probe.py with the environment's Python (-I: neither the project folder nor
    PYTHONPATH may stand in for the installed package) and return its JSON report."""
    config = manager.config
    args = probe_module.project_args(config.package_name, config.project_slug, config.dependencies)
    args["source"] = str(config.project / "src" / config.package_name)  # the editable install's
    if config.gpu_check:
        from . import gpu  # only projects with a GPU framework have gpu.py

        fix = {m: gpu.cuda_fix(manager, m) for m in gpu.FRAMEWORKS}
        args["gpu"] = {"accelerator": config.accelerator, "fix": fix}
    if full:
        files = [f for f in manager.requirement_files if (config.project / f).is_file()]
        args["project"], args["requirement_files"] = str(config.project), files
        args["lock_file"] = manager.lock_file if manager.pins_lock else None
        args["pins"] = manager.pins_lock
    probe_file = Path(probe_module.__file__).resolve()
    # Exit status 1 only says that an import failed: the report says which.
    _, out, err = query(
        [manager.env_python(), "-I", probe_file, json.dumps(args)], config.project, timeout=900
    )
    lines = [line for line in out.splitlines() if line.startswith(probe_module.MARKER)]
    if not lines:
        raise ToolError("the probe printed no report", why=(out + err)[-2000:])
    report: ProbeReport = json.loads(lines[-1][len(probe_module.MARKER) :])
    return report


def check_environment(report: Report, manager: Manager) -> bool:
    """Whether the environment exists (a problem when not); warn of another active one."""
    report.section("Environment")
    try:
        python = manager.env_python()
        if not python.exists():
            raise ToolError(f"the project's environment does not exist ({manager.location()})")
    except ToolError as exc:
        report.problem(exc.what, manager.fix_env())
        return False
    report.ok(f"the project's environment: {manager.location()}")
    # The environment this shell activated; not conda's base: `conda init` activates it in every
    # shell, it is no choice the user made.
    base = os.environ.get("CONDA_DEFAULT_ENV", "base") == "base"
    active = os.environ.get("VIRTUAL_ENV") or (None if base else os.environ.get("CONDA_PREFIX"))
    prefix = python.parent.parent if python.parent.name in ("bin", "Scripts") else python.parent
    if active and Path(active).resolve() != prefix.resolve():
        report.problem(
            f"this shell's active environment ({active}) is not the project's environment "
            f"({prefix}): `python` in this shell will not see the project's packages",
            f"{manager.config.commands['activate']}; or run commands with `{manager.command('run')}`",
        )
    return True


def check_probe(report: Report, manager: Manager, found: ProbeReport) -> None:
    """The doctor's sections from the probe's report: Python, declarations, pip check, imports."""
    fix_env, want = manager.fix_env(), manager.config.python_version
    report.section("Python")
    report.info(f"Python {found['python']} at {found['executable']}")
    for error in found.get("errors", []):
        report.problem(error, fix_env)
    need = found.get("requires_python")
    if found.get("python_ok") is False:
        report.problem(
            f"the environment has Python {found['python']}, but pyproject.toml requires {need}",
            f"rebuild the environment with Python {want}: delete it, then {fix_env}",
        )
    elif found.get("python_ok"):
        report.ok(f"Python {found['python']} satisfies requires-python {need}")
    elif "python_ok" in found:  # the probe read no requires-python: nothing was checked
        report.problem(
            "pyproject.toml declares no requires-python: the environment's Python is unchecked",
            f'add requires-python = ">={want}" under [project] in pyproject.toml',
        )
    report.section("Declared dependencies")
    declared = found.get("declared", [])
    for row in declared:
        name, need, have = row["name"], row["requirement"], row["installed"]
        if not have:
            report.problem(f"{name} is declared ({need}) but not installed", fix_env)
        elif not row["ok"]:
            report.problem(f"{name} {have} is installed, but the project needs {need}", fix_env)
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
    for imported in found["imports"]:
        if not imported["error"]:
            report.ok(f"import {imported['module']}")
            continue
        # Not installed at all (or the project's own package): the set-up installs it.
        missing = imported["module"] == manager.config.package_name or not imported["version"]
        fix = (
            fix_env
            if missing
            else manager.fix_import(imported["distribution"], imported["version"])
        )
        report.problem(f"import {imported['module']} fails: {imported['error']}", fix)
    if found.get("gpu"):  # asked for by config.gpu_check: the project has gpu.py
        from . import gpu

        gpu.doctor_section(report, found["gpu"], manager.config.accelerator)


def doctor(project: Path) -> int:
    """Check the project's environment and its lock; print each finding; 1 when a problem is found."""
    report = Report()
    try:
        manager = manager_for(Config.load(project))
    except ToolError as exc:
        report.problem(exc.what, exc.fix or "run the doctor in the project folder")
        return report.summary()
    say(f"{manager.config.project_slug}: environment doctor ({manager.name})")
    found: ProbeReport | None = None
    if check_environment(report, manager):
        try:
            found = run_probe(manager, full=True)
            check_probe(report, manager, found)
        except ToolError as exc:
            report.problem(f"{exc.what}: {last_line(exc.why)}", manager.fix_env())
    manager.check_lock(report, found)
    return report.summary()
