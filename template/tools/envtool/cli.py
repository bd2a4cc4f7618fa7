"""The environment tool's commands: set up, check (doctor) and lock a project:
`python tools/envtool <command>` (make env|doctor|lock), on any Python 3.10+ (copier's tasks:
copying.py)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import doctor, probe, shell
from .config import RESULT_FILE, Config, canonical
from .failures import missing_package, unreachable_index
from .manager import Manager, manager_for
from .report import or_make
from .running import ToolError, capture, say, untracked
from .shell import CONFIG_FILE, WINDOWS

IMPORT_FIX = (
    "install what is missing (check its name in pyproject.toml); for a package whose import name "
    'differs from its name, add {"req": "pyyaml>=6", "name": "pyyaml", "import": "yaml"} (its '
    f"requirement, name and module) to `dependencies` in {CONFIG_FILE.as_posix()}"
)
STOP_SIGNALS = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
TOOL = "py tools\\envtool" if WINDOWS else "python3 tools/envtool"


def retry_command(project: Path, windows: bool = WINDOWS) -> str:
    """The command that finishes the set-up after a fix, as the user types it."""
    if windows:  # no `cd`: cmd's cd stays on its drive, and PowerShell 5.1 has no `&&`
        return f'py "{project}\\tools\\envtool" setup'
    return f"cd {shlex.quote(str(project))} && python3 tools/envtool setup"


def sanity_import(manager: Manager, parts: dict[str, float]) -> str:
    """The probe: the package and every declared dependency import, no broken requirement, the
    GPU truth; `parts` gets the dependency check's (`pip check`) share of its time."""
    report = doctor.run_probe(manager)
    parts.update(report.get("seconds", {}))
    for line in [f"Python {report['python']} ({report['executable']})", *probe.table(report)]:
        say(f"    {line}")
    gpu_errors = []
    if report.get("gpu"):  # asked for by config.gpu_check: the project has gpu.py
        from . import gpu

        gpu_errors = gpu.show(report["gpu"], lambda text: say(f"    {text}"), None)
    failed = [r for r in report["imports"] if r["error"]]
    what = ", ".join(r["module"] for r in failed) or "; ".join(report["errors"])
    if what:
        why = "\n".join(f"{r['module']}: {r['error']}" for r in failed)
        raise ToolError(f"sanity import failed: {what}", why=why or what, fix=IMPORT_FIX)
    if gpu_errors:
        raise ToolError(f"GPU check failed: {gpu_errors[0]['what']}", fix=gpu_errors[0]["fix"])
    if report.get("broken"):
        raise ToolError(
            "the installed packages have conflicting requirements",
            why="\n".join(report["broken"]),
            fix="pin compatible versions in pyproject.toml, then run the command below",
        )
    return f"{len(report['imports'])} imports ok, dependency check passed"


def explain_install_failure(manager: Manager, exc: ToolError) -> None:
    """Name the real cause (an unreachable index, a missing package) and a fix that works as typed."""
    unreachable = unreachable_index(exc.output)
    if unreachable:
        exc.what = f"the package index could not be reached ({unreachable})"
        exc.fix = (
            "check your network (or proxy) and the index URL; nothing is wrong with the packages. "
            f"To use another index, set it in {manager.index_setting}"
        )
        if "certificate" in unreachable:  # a proxy that inspects TLS, with its own certificate
            exc.fix += "; to trust your system's certificates: UV_NATIVE_TLS=1 (uv), PIP_CERT (pip)"
        return
    name = missing_package(exc.output)
    if not name:
        return
    missing = f"the package index has no package '{name}' (or no version of it that fits)"
    extras = [d for d in manager.config.dependencies if d.get("extra")]
    kept = [d["req"] for d in extras if canonical(d["name"]) != canonical(name)]
    if len(kept) == len(extras):  # added by hand, not through the answers
        exc.fix = f"{missing}: correct its name or remove it in {manager.dependency_files}"
        return
    # copier's own Python when it runs us (the README's copier is not on PATH), else find it.
    here = importlib.util.find_spec("copier")
    recopy = [sys.executable, "-m", "copier"] if here else [shell.which("copier") or "copier"]
    recopy += ["recopy", "--trust", "--defaults", "--overwrite", "--skip-tasks", "--data"]
    recopy.append(f"extra_dependencies={' '.join(kept)}")
    exc.fix = (
        f"{missing}. It comes from your answer extra_dependencies, which pyproject.toml, "
        f"{CONFIG_FILE.as_posix()}, the Dockerfile and the tests all name: re-render them without "
        f"it (or with the right name), then commit: cd {shell.shell_quote(str(manager.project))} && "
        + " ".join(shell.shell_quote(a) for a in recopy)
    )


def setup(project: Path, commit: Callable[[Manager], str | None] | None = None) -> dict[str, Any]:
    """Run every step; print a summary (`commit`: copier's commit of the lock file) or what failed
    and how to finish. The result goes to tools/envtool-result.json (roster, bench)."""
    started = time.monotonic()
    result: dict[str, Any] = {"status": "failed", "project": str(project), "steps": []}
    step = f"read {CONFIG_FILE.as_posix()}"
    try:
        config = Config.load(project)
        step = f"load the {config.env_manager} manager"
        manager = manager_for(config)
        say(f"copier-mlops: creating the {manager.name} environment for {project}")
        parts: dict[str, float] = {}  # what a step's time is made of (the sanity import's)
        steps: list[tuple[str, Callable[[], str]]] = [
            ("find the tool", manager.find_tool),
            (f"find Python {config.python_version}", manager.find_interpreter),
            ("create the environment", manager.create_or_undo),
            ("install the project and its dependencies", manager.install_checked),
            ("write the lock file", manager.lock),
            ("sanity import", lambda: sanity_import(manager, parts)),
        ]
        if config.jupyter_kernel:
            from . import kernel  # only projects that asked for a kernel have kernel.py

            steps.append(("register the Jupyter kernel", lambda: kernel.kernel_step(manager)))
        for i, (step, action) in enumerate(steps, 1):
            say(f"==> [{i}/{len(steps)}] {step}")
            t0 = time.monotonic()
            parts.clear()
            note = action()
            result["steps"].append({"name": step, "seconds": round(time.monotonic() - t0, 2)})
            if parts:
                result["steps"][-1]["parts"] = {k: round(v, 2) for k, v in parts.items()}
            say(f"    {note}  [{result['steps'][-1]['seconds']:.1f}s]")
    except ToolError as exc:
        if len(result["steps"]) >= 2:  # creating, installing, locking: where the index is used
            explain_install_failure(manager, exc)
        return failure(project, result, step, exc)
    except Exception as exc:  # a bug must not cost the user their project either
        return failure(
            project, result, step, ToolError(f"unexpected error: {type(exc).__name__}: {exc}")
        )
    except KeyboardInterrupt as exc:
        return failure(project, result, step, ToolError(f"interrupted ({exc or 'Ctrl-C'})"))
    total = time.monotonic() - started
    result.update(status="ok", manager=manager.name, seconds=round(total, 2))
    say(f"\nEnvironment ready ({manager.name}) in {total:.1f}s")
    notes = {
        "location": manager.location(),
        "activate": manager.activation(),
        "run tests": or_make(manager.command("test"), "make test"),
        "rebuild": f"make env   (or: {TOOL} setup)",
        "PATH": shell.path_advice(manager.name, manager.tool) if manager.tool else None,
        "git": commit(manager) if commit else None,
    }
    new = " ".join(untracked(project, *manager.lock_files()))  # update needs a clean tree
    step = new and f"commit the lock file: git add {new} && git commit -m 'Add {new}'"
    if new and not all(capture(["git", "config", k], project) for k in ("user.name", "user.email")):
        # Our first commit had a stand-in author; the user's own commit needs theirs.
        step += (
            "\n             (git does not know who you are yet: first, once, with your own name "
            'and e-mail: git config --global user.name "Your Name" && git config --global '
            'user.email "you@example.com")'
        )
    notes["next"] = step
    result.update(location=notes["location"], activate=notes["activate"], test=notes["run tests"])
    for key, text in notes.items():
        if text:
            say(f"  {key + ':':<10} {text}")
    say(
        "  time per step: " + ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in result["steps"])
    )
    return result


def failure(project: Path, result: dict[str, Any], step: str, exc: ToolError) -> dict[str, Any]:
    """Print what failed, why and how to finish; the same goes into the result."""
    retry = retry_command(project)
    result.update(failed_step=step, reason=exc.what, why=exc.why, fix=exc.fix, retry=retry)
    say(f"\nFAILED at step '{step}': {exc.what}")
    explain(exc, "why (last lines of output):")
    say(f"  Your project files are all in place in {project}.")
    say(f"  After fixing it, finish the setup with:\n    {retry}\n  (or `make env` in that folder)")
    return result


def explain(exc: ToolError, title: str = "", tail: int = 0) -> None:
    """Print the failure's output (its last `tail` lines; all when 0) and its fix."""
    why = [f"    | {line}" for line in exc.why.splitlines()[-tail:]]
    for line in (
        ([f"  {title}"] if title and why else []) + why + ([f"  fix: {exc.fix}"] if exc.fix else [])
    ):
        say(line)


def lock(project: Path) -> int:
    """Re-resolve and write the lock file: the one writer of it besides the set-up."""
    try:
        manager = manager_for(Config.load(project))
        manager.find_tool()
        say(f"  {manager.lock(refresh=True)}")
    except ToolError as exc:
        say(f"lock failed: {exc.what}")
        explain(exc, tail=10)
        return 1
    return 0


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a closed terminal) stop the tool like Ctrl-C: it reports."""

    def handler(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # one report, even when a second signal follows
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def default_project() -> Path:
    """This copy's project (tools/envtool), else the current folder (the template's copy)."""
    tools = Path(os.path.abspath(__file__)).parent.parent
    return tools.parent if (tools.parent / CONFIG_FILE).is_file() else Path.cwd()


def parser(commands: list[str]) -> argparse.ArgumentParser:
    """The command line (copier's tasks: copying.py's `commands`, with its own options)."""
    parser = argparse.ArgumentParser(prog="envtool", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="setup", choices=commands)
    parser.add_argument("--project", type=Path, default=default_project())
    parser.add_argument("--no-input", action="store_true", help="never ask questions")
    return parser


def start(args: argparse.Namespace) -> Path:
    """What every command does first: UTF-8 output, the signals, the project folder."""
    for stream in (sys.stdout, sys.stderr):  # Windows pipes default to cp1252: paths may not fit
        if hasattr(stream, "reconfigure") and not stream.isatty():
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    stop_on_signals()
    return Path(args.project).resolve()


def write_result(project: Path, result: dict[str, Any]) -> None:
    """tools/envtool-result.json; a read-only folder must not turn a working env into a failure."""
    path = project / RESULT_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        say(f"  (could not write {path}: {exc})")


def main(argv: list[str] | None = None) -> int:
    """setup (default), doctor or lock; the exit status."""
    args = parser(["setup", "doctor", "lock"]).parse_args(argv)
    project = start(args)
    if args.command != "setup":
        return doctor.doctor(project) if args.command == "doctor" else lock(project)
    result = setup(project)
    write_result(project, result)
    return 0 if result["status"] == "ok" else 1
