"""Command line of the environment tool, run from the project folder with any Python 3.10+:

python tools/envtool setup     # create or update the environment, lock, probe (`make env`)
python tools/envtool doctor    # check it; says how to fix each problem (`make doctor`)
python tools/envtool lock      # re-resolve and write the lock file (`make lock`)
python tools/envtool git-init  # `git init` + first commit (copier's task)

copier's tasks run the project's own copy (`setup --from-copier`: never exits non-zero).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import doctor, gitinit, kernel, switch
from .base import (
    CONFIG_FILE,
    RESULT_FILE,
    WINDOWS,
    Config,
    Manager,
    ToolError,
    capture,
    missing_package,
    say,
    shell_quote,
    unreachable_index,
    which,
)
from .managers import manager_for

STOP_SIGNALS = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
TOOL = ["py", "tools\\envtool"] if WINDOWS else ["python3", "tools/envtool"]
RETRY = [*TOOL, "setup"]


def retry_command(project: Path, windows: bool = WINDOWS) -> str:
    if windows:  # no `cd`: cmd's cd stays on its drive, and PowerShell 5.1 has no `&&`
        return f'py "{project}\\tools\\envtool" setup'
    return f"cd {shlex.quote(str(project))} && {' '.join(RETRY)}"


def sanity_import(manager: Manager) -> str:
    """The probe: the package and every declared dependency import, no broken requirement."""
    report = doctor.run_probe(manager)
    rows = report["imports"]
    say(f"    Python {report['python']} ({report['executable']})")
    width = max([len(r["module"]) for r in rows] + [6])
    say(f"    {'import'.ljust(width)}  {'version':<12}  result")
    for r in rows:
        result = "ok" if not r["error"] else "FAILED: " + r["error"]
        say(f"    {r['module'].ljust(width)}  {(r['version'] or '-'):<12}  {result}")
    gpu_errors = gpu_lines(report.get("gpu"))
    failed = [r["module"] for r in rows if r["error"]]
    if report["errors"] or failed:
        raise ToolError(
            "sanity import failed: " + (", ".join(failed) or "; ".join(report["errors"])),
            why="\n".join(f"{r['module']}: {r['error']}" for r in rows if r["error"])
            or "; ".join(report["errors"]),
            fix="install what is missing (check its name in pyproject.toml); for a package whose "
            'import name differs from its name, add {"req": "pyyaml>=6", "name": "pyyaml", '
            '"import": "yaml"} (its requirement, name and module) to '
            f"`dependencies` in {CONFIG_FILE.as_posix()}",
        )
    if gpu_errors:
        error = gpu_errors[0]
        raise ToolError(f"GPU check failed: {error['what']}", fix=error["fix"])
    if report.get("broken"):
        raise ToolError(
            "the installed packages have conflicting requirements",
            why="\n".join(report["broken"]),
            fix="pin compatible versions in pyproject.toml, then run the command below",
        )
    return f"{len(rows)} imports ok, dependency check passed"


def gpu_lines(gpu: dict[str, Any] | None) -> list[dict[str, str]]:
    """Print the framework's CUDA build, its GPUs and any warning; return the errors."""
    if not gpu:
        return []
    if "version" in gpu:  # absent when the framework could not report
        build = f"CUDA {gpu['cuda_build']} build" if gpu["cuda_build"] else "CPU-only build"
        gpus = ", ".join(gpu["gpus"]) or "none"
        say(f"    {gpu['framework']} {gpu['version']}: {build}; GPUs visible: {gpus}")
    for p in gpu["problems"]:
        say(f"    {p['level'].upper()}: {p['what']}")
        say(f"      fix: {p['fix']}")
    return [p for p in gpu["problems"] if p["level"] == "error"]


def explain_install_failure(manager: Manager, exc: ToolError) -> None:
    """Name the real cause, and a fix that works when followed literally."""
    unreachable = unreachable_index(exc.output)
    if unreachable:
        exc.what = f"the package index could not be reached ({unreachable})"
        exc.fix = (
            "check your network (or proxy) and the index URL (package_index_url; pip's "
            "`pip config list`, or UV_INDEX_URL/PIP_INDEX_URL); nothing is wrong with the packages"
        )
        return
    name = missing_package(exc.output)
    if not name:
        return
    config = manager.config
    normal = re.sub(r"[-_.]+", "-", name).lower()
    extras = [d for d in config.dependencies if d.get("extra")]
    kept = [d["req"] for d in extras if d.get("name") != normal]
    if len(kept) == len(extras):  # added by hand, not through the answers
        exc.fix = (
            f"the package index has no package '{name}' (or no version of it that fits): "
            f"correct its name or remove it in {manager.dependency_files}"
        )
        return
    # copier's own Python when it runs us (the README's copier is not on PATH), else find it.
    copier = (
        [sys.executable, "-m", "copier"]
        if importlib.util.find_spec("copier")
        else [which("copier") or "copier"]
    )
    recopy = [*copier, "recopy", "--trust", "--defaults", "--overwrite", "--skip-tasks"]
    recopy += ["--data", f"extra_dependencies={' '.join(kept)}"]
    exc.fix = (
        f"the package index has no package '{name}' (or no version of it that fits). It comes "
        f"from your answer extra_dependencies, which pyproject.toml, {CONFIG_FILE.as_posix()}, the "
        "Dockerfile and the tests all name: re-render them without it (or with the "
        f"right name), then commit: cd {shell_quote(str(config.project))} && "
        f"{' '.join(shell_quote(a) for a in recopy)}"
    )


def lock_hint(manager: Manager) -> str | None:
    """A reminder to commit the lock file(s): `copier update` refuses a dirty git tree."""
    locks = [lock for lock in manager.lock_files() if (manager.project / lock).exists()]
    if not locks or capture(["git", "rev-parse", "--git-dir"], cwd=manager.project) is None:
        return None
    new = [
        lock
        for lock in locks
        if capture(["git", "ls-files", "--error-unmatch", lock], cwd=manager.project) is None
    ]
    if not new:
        return None
    files = " ".join(new)
    return f"commit the lock file: git add {files} && git commit -m 'Add {files}'"


def offer_alternative(
    manager: Manager, error: ToolError, interactive: bool, template: str
) -> Manager | None:
    """When the tool is missing and a person is at the keyboard (under copier, which can
    re-render the project so that every file matches), offer another manager."""
    if not (interactive and manager.alternatives() and switch.available(template)):
        return None
    try:
        import questionary  # copier's own dependency; absent when run by a bare python3
    except ImportError:
        return None
    stop = f"Stop here: I will {error.fix.split(' (')[0]} and run the retry command"
    choices = {
        f"Use a plain .venv with pip instead ({alt}; no {manager.lock_file})": alt
        for alt in manager.alternatives()
    }
    answer = questionary.select(f"{error.what}. What now?", choices=[*choices, stop]).ask()
    if answer in choices:
        alt = choices[answer]
        say(
            f"    switching the project to {alt}: {switch.switch_manager(manager.project, alt, template)}"
        )
        return manager_for(Config.load(manager.project))
    return None


def setup(
    project: Path, *, interactive: bool, commit_lock: bool = False, template: str = ""
) -> dict[str, Any]:
    """Run every step; print a summary or what failed and how to finish. Returns the result
    (also written to tools/envtool-result.json for roster, bench and other programs)."""
    started = time.monotonic()
    result: dict[str, Any] = {"status": "failed", "project": str(project), "steps": []}
    step = f"read {CONFIG_FILE.as_posix()}"
    try:
        config = Config.load(project)
        manager = manager_for(config)
        say(f"copier-mlops: creating the {manager.name} environment for {project}")
        steps: list[tuple[str, Callable[[], str]]] = [
            ("find the tool", lambda: manager.find_tool()),
            (f"find Python {config.python_version}", lambda: manager.find_interpreter()),
            ("create the environment", lambda: manager.create_or_undo()),
            ("install the project and its dependencies", lambda: manager.install()),
            ("write the lock file", lambda: manager.lock()),
            ("sanity import", lambda: sanity_import(manager)),
        ]
        if config.jupyter_kernel:
            steps.append(
                (
                    "register the Jupyter kernel",
                    lambda: kernel.kernel_step(config, manager.env_python(), manager.name),
                )
            )
        i = 0
        while i < len(steps):
            step, action = steps[i]
            say(f"==> [{i + 1}/{len(steps)}] {step}")
            t0 = time.monotonic()
            try:
                note = action()
            except ToolError as exc:
                if i >= 2:  # creating, installing, locking: where the index is used
                    explain_install_failure(manager, exc)
                other = offer_alternative(manager, exc, interactive, template) if i == 0 else None
                if other is None:
                    raise
                manager = other
                continue
            seconds = time.monotonic() - t0
            result["steps"].append({"name": step, "seconds": round(seconds, 2)})
            say(f"    {note}  [{seconds:.1f}s]")
            i += 1
    except ToolError as exc:
        return failure(project, result, step, exc)
    except Exception as exc:  # a bug must not cost the user their project either
        return failure(
            project, result, step, ToolError(f"unexpected error: {type(exc).__name__}: {exc}")
        )
    except KeyboardInterrupt as exc:
        return failure(project, result, step, ToolError(f"interrupted ({exc or 'Ctrl-C'})"))
    total = time.monotonic() - started
    result.update(status="ok", manager=manager.name, seconds=round(total, 2))
    result.update(location=manager.location(), activate=manager.activation())
    result.update(test=manager.test_command())
    say(f"\nEnvironment ready ({manager.name}) in {total:.1f}s")
    say(f"  location:  {result['location']}")
    say(f"  activate:  {result['activate']}")
    say(f"  run tests: {result['test']}")
    say(f"  rebuild:   make env   (or: {' '.join(RETRY)})")
    advice = manager.path_advice()
    if advice:
        say(f"  PATH:      {advice}")
    committed = gitinit.commit_lock_file(project, *manager.lock_files()) if commit_lock else None
    if committed:
        say(f"  git:       {committed}")
    hint = lock_hint(manager)
    if hint:
        say(f"  next:      {hint}")
    say(
        "  time per step: " + ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in result["steps"])
    )
    return result


def failure(project: Path, result: dict[str, Any], step: str, exc: ToolError) -> dict[str, Any]:
    """Print what failed, why and how to finish; the same goes into the result."""
    result.update(
        failed_step=step, reason=exc.what, why=exc.why, fix=exc.fix, retry=retry_command(project)
    )
    say(f"\nFAILED at step '{step}': {exc.what}")
    if exc.why:
        say("  why (last lines of output):")
        for line in exc.why.splitlines():
            say(f"    | {line}")
    if exc.fix:
        say(f"  fix: {exc.fix}")
    say(f"  Your project files are all in place in {project}.")
    say("  After fixing it, finish the setup with:")
    say(f"    {retry_command(project)}")
    say("  (or `make env` in that folder)")
    return result


def write_result(path: Path, result: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:  # a read-only folder must not turn a working env into a failure
        say(f"  (could not write {path}: {exc})")


def lock(project: Path) -> int:
    """Re-resolve and write the lock file: the one writer of it besides the set-up."""
    try:
        manager = manager_for(Config.load(project))
        manager.find_tool()
        say(f"  {manager.lock(refresh=True)}")
    except ToolError as exc:
        say(f"lock failed: {exc.what}")
        for line in exc.why.splitlines()[-10:]:
            say(f"    | {line}")
        if exc.fix:
            say(f"  fix: {exc.fix}")
        return 1
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal): handled like Ctrl-C, so the tool reports and
    exits 0 under copier, which would delete the project after a failed task."""


def stop_on_signals() -> None:
    def handler(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # one report, even when a second signal follows
        raise Stopped(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def default_project() -> Path:
    """The project this copy of the tool belongs to (tools/envtool, run from any folder), else
    the current folder."""
    tools = Path(os.path.abspath(__file__)).parent.parent
    if tools.name == "tools" and (tools.parent / CONFIG_FILE).is_file():
        return tools.parent
    return Path.cwd()


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # Windows pipes default to cp1252: paths may not fit
        if hasattr(stream, "reconfigure") and not stream.isatty():
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    parser = argparse.ArgumentParser(prog="envtool", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", choices=["setup", "doctor", "lock", "git-init"], default="setup"
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=default_project(),
        help="the generated project (default: the one this tools/envtool belongs to)",
    )
    parser.add_argument(
        "--from-copier",
        action="store_true",
        help="exit 0 even on failure (copier would delete the project)",
    )
    parser.add_argument("--no-input", action="store_true", help="never ask questions")
    parser.add_argument(
        "--result", type=Path, help=f"where setup writes its JSON result (default: {RESULT_FILE})"
    )
    parser.add_argument("--author-name", default="")
    parser.add_argument("--author-email", default="")
    parser.add_argument(
        "--template", default="", help="the template copier rendered (git-init; setup's fallback)"
    )
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    stop_on_signals()
    if args.command == "doctor":
        return doctor.doctor(project)
    if args.command == "lock":
        return lock(project)
    result: dict[str, Any] = {"status": "failed", "steps": []}
    try:
        if args.command == "git-init":
            return gitinit.main(
                project, args.author_name, args.author_email, args.template, args.answers_file
            )
        interactive = not args.no_input and sys.stdin is not None and sys.stdin.isatty()
        result = setup(
            project, interactive=interactive, commit_lock=args.from_copier, template=args.template
        )
    except BaseException as exc:  # never a non-zero exit under copier: it would delete the project
        failure(project, result, args.command, ToolError(f"unexpected {type(exc).__name__}: {exc}"))
    if args.command == "git-init":
        return 0
    write_result(args.result or project / RESULT_FILE, result)
    return 0 if result["status"] == "ok" or args.from_copier else 1
