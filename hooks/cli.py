"""Command line: `env` (default) creates and checks the environment; `git-init` makes the repo.

python tools/envsetup                 # in a generated project (what `make env` runs)
python hooks/__main__.py env --from-copier   # copier's task: never exits non-zero
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import gitinit, kernel, probe, switch
from .base import (
    WINDOWS,
    Config,
    HookError,
    Manager,
    capture,
    missing_package,
    run,
    say,
    shell_quote,
    unreachable_index,
    which,
)
from .managers import manager_for

STOP_SIGNALS = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
RETRY = ["py", "tools\\envsetup"] if WINDOWS else ["python3", "tools/envsetup"]


def retry_command(project: Path) -> str:
    cd = f'cd "{project}"' if WINDOWS else f"cd {shlex.quote(str(project))}"
    return f"{cd} && {' '.join(RETRY)}"


def sanity_import(manager: Manager) -> str:
    """Import the package and every declared dependency with the env's Python; then pip check."""
    config = manager.config
    args = {
        "package": config.package_name,
        "distribution": config.project_slug,
        "hints": config.import_hints,
        "gpu": {
            "accelerator": config.accelerator,
            "env_manager": manager.name,
            "cuda_index": config.cuda_index,
        },
        # The editable install's source: the imported package must be this folder.
        "source": str(config.project / "src" / config.package_name),
    }
    # -I: neither the project folder nor PYTHONPATH may stand in for the installed package.
    cmd = [manager.env_python(), "-I", Path(probe.__file__).resolve(), json.dumps(args)]
    out = run(cmd, config.project, echo=False, what="the sanity import could not run")
    lines = [line for line in out.splitlines() if line.startswith(probe.MARKER)]
    if not lines:
        raise HookError("the sanity import printed no report", why=out[-2000:])
    report = json.loads(lines[-1][len(probe.MARKER) :])
    rows = report.get("rows", [])
    say(f"    Python {report.get('python')} ({report.get('executable')})")
    width = max([len(r["module"]) for r in rows] + [6])
    say(f"    {'import'.ljust(width)}  {'version':<12}  result")
    for r in rows:
        result = "ok" if not r["error"] else "FAILED: " + r["error"]
        say(f"    {r['module'].ljust(width)}  {(r['version'] or '-'):<12}  {result}")
    gpu_errors = gpu_lines(report.get("gpu"))
    failed = [r["module"] for r in rows if r["error"]]
    if report.get("error") or failed:
        raise HookError(
            "sanity import failed: " + (", ".join(failed) or report.get("error", "")),
            why="\n".join(f"{r['module']}: {r['error']}" for r in rows if r["error"])
            or report.get("error", ""),
            fix="install what is missing (check its name in pyproject.toml); for a package whose "
            "import name differs from its name, add {'req': NAME, 'import': MODULE} to "
            "`dependencies` in tools/envsetup.json",
        )
    if gpu_errors:
        error = gpu_errors[0]
        raise HookError(f"GPU check failed: {error['what']}", fix=error["fix"])
    run(
        manager.check_command(),
        config.project,
        what="the installed packages have conflicting requirements",
        fix="pin compatible versions in pyproject.toml, then run the command below",
    )
    return f"{len(rows)} imports ok, dependency check passed"


def explain_install_failure(manager: Manager, exc: HookError) -> None:
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
    extras = [d["req"] for d in config.dependencies if d.get("extra")]
    kept = [r for r in extras if requirement_name(r) != normal]
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
        "from your answer extra_dependencies, which pyproject.toml, tools/envsetup.json, the "
        "Dockerfile, the tests and the doctor all name: re-render them without it (or with the "
        f"right name), then commit: cd {shell_quote(str(config.project))} && "
        f"{' '.join(shell_quote(a) for a in recopy)}"
    )


def requirement_name(req: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
    return re.sub(r"[-_.]+", "-", found[0]).lower() if found else ""


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


def lock_hint(manager: Manager) -> str | None:
    """A reminder to commit the lock file: `copier update` refuses a dirty git tree."""
    lock = manager.lock_file
    if not lock or not (manager.project / lock).exists():
        return None
    if capture(["git", "rev-parse", "--git-dir"], cwd=manager.project) is None:
        return None
    if capture(["git", "ls-files", "--error-unmatch", lock], cwd=manager.project) is not None:
        return None
    return f"commit the lock file: git add {lock} && git commit -m 'Add {lock}'"


def offer_alternative(manager: Manager, error: HookError, interactive: bool) -> Manager | None:
    """When the tool is missing and a person is at the keyboard (under copier, which can
    re-render the project so that every file matches), offer another manager."""
    if not (interactive and manager.alternatives() and switch.available()):
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
        say(f"    switching the project to {alt}: {switch.switch_manager(manager.project, alt)}")
        return manager_for(Config.load(manager.project))
    return None


def create_env(project: Path, *, interactive: bool, commit_lock: bool = False) -> bool:
    """Run every step; print a summary or what failed and how to finish. True on success."""
    started = time.monotonic()
    timings: list[tuple[str, float]] = []
    step = "read tools/envsetup.json"
    try:
        config = Config.load(project)
        manager = manager_for(config)
        say(f"copier-mlops: creating the {manager.name} environment for {project}")
        steps: list[tuple[str, Callable[[], str]]] = [
            ("find the tool", lambda: manager.find_tool()),
            (f"find Python {config.python_version}", lambda: manager.find_interpreter()),
            ("create the environment", lambda: manager.create()),
            ("install the project and its dependencies", lambda: manager.install()),
            ("write the lock file", lambda: manager.lock()),
            ("sanity import", lambda: sanity_import(manager)),
        ]
        if kernel.requested(project):
            steps.append(
                (
                    "register the Jupyter kernel",
                    lambda: kernel.kernel_step(project, manager.env_python(), manager.name),
                )
            )
        i = 0
        while i < len(steps):
            step, action = steps[i]
            say(f"==> [{i + 1}/{len(steps)}] {step}")
            t0 = time.monotonic()
            try:
                note = action()
            except HookError as exc:
                if i >= 2:  # creating, installing, locking: where the index is used
                    explain_install_failure(manager, exc)
                other = offer_alternative(manager, exc, interactive) if i == 0 else None
                if other is None:
                    raise
                manager = other
                continue
            timings.append((step, time.monotonic() - t0))
            say(f"    {note}  [{timings[-1][1]:.1f}s]")
            i += 1
    except HookError as exc:
        report_failure(project, step, exc)
        return False
    except Exception as exc:  # a bug must not cost the user their project either
        report_failure(project, step, HookError(f"unexpected error: {type(exc).__name__}: {exc}"))
        return False
    except KeyboardInterrupt as exc:
        report_failure(project, step, HookError(f"interrupted ({exc or 'Ctrl-C'})"))
        return False
    total = time.monotonic() - started
    say(f"\nEnvironment ready ({manager.name}) in {total:.1f}s")
    say(f"  location:  {manager.location()}")
    say(f"  activate:  {manager.activation()}")
    say(f"  run tests: {manager.test_command()}")
    say(f"  rebuild:   make env   (or: {' '.join(RETRY)})")
    advice = manager.path_advice()
    if advice:
        say(f"  PATH:      {advice}")
    committed = gitinit.commit_lock_file(project, manager.lock_file) if commit_lock else None
    if committed:
        say(f"  git:       {committed}")
    hint = lock_hint(manager)
    if hint:
        say(f"  next:      {hint}")
    say("  time per step: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in timings))
    return True


def report_failure(project: Path, step: str, exc: HookError) -> None:
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


def ensure_project_copy(project: Path) -> None:
    """Make sure the project has its own copy of this code as tools/envsetup (for `make env`).

    The template ships it as a symlink to hooks/; a checkout without symlink support (Windows
    git by default) turns that into a small text file, which is replaced by a real copy here.
    """
    here = Path(__file__).resolve().parent
    target = project / "tools" / "envsetup"
    if target.is_dir():
        return
    if target.is_file():
        target.unlink()
    shutil.copytree(here, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal): handled like Ctrl-C, so the hook reports and
    exits 0 under copier, which would delete the project after a failed task."""


def stop_on_signals() -> None:
    def handler(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # one report, even when a second signal follows
        raise Stopped(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def default_project() -> Path:
    """The project this copy of the tool belongs to (run as tools/envsetup from any folder),
    else the current folder (copier runs the hook from the template, inside the project)."""
    tools = Path(os.path.abspath(__file__)).parent.parent
    if tools.name == "tools" and (tools / "envsetup.json").is_file():
        return tools.parent
    return Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envsetup", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["env", "git-init"], default="env")
    parser.add_argument(
        "--project",
        type=Path,
        default=default_project(),
        help="the generated project (default: the one this tools/envsetup belongs to)",
    )
    parser.add_argument(
        "--from-copier",
        action="store_true",
        help="exit 0 even on failure (copier would delete the project)",
    )
    parser.add_argument("--no-input", action="store_true", help="never ask questions")
    parser.add_argument("--author-name", default="")
    parser.add_argument("--author-email", default="")
    parser.add_argument("--template", default="", help="git-init: the template copier rendered")
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    ok = False
    stop_on_signals()
    try:
        if args.command == "git-init":
            return gitinit.main(
                project, args.author_name, args.author_email, args.template, args.answers_file
            )
        if args.from_copier:
            ensure_project_copy(project)
        interactive = not args.no_input and sys.stdin is not None and sys.stdin.isatty()
        ok = create_env(project, interactive=interactive, commit_lock=args.from_copier)
    except BaseException as exc:  # never a non-zero exit under copier: it would delete the project
        report_failure(project, args.command, HookError(f"unexpected {type(exc).__name__}: {exc}"))
    return 0 if ok or args.from_copier or args.command == "git-init" else 1
