"""The one probe, run by the ENVIRONMENT's Python in isolated mode: `python -I probe.py '<json>'`
(ProbeArgs; the image build: `--config tools/envtool.json [--only dependencies|project]`). Its
report, for the set-up, the doctor and the image build, needs `packaging` and `tomllib`/`tomli`
(pytest brings them; without them only the imports run). Exit status 1: an import or requirement
failed."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Literal, TypedDict

MARKER = "ENVTOOL-PROBE "


class ProbeArgs(TypedDict, total=False):
    """What to check (package and distribution always given)."""

    package: str  # the project's import name
    distribution: str  # its distribution name (project_slug)
    hints: dict[str, str]  # distribution -> module, where they differ (scikit-learn -> sklearn)
    imports: list[str]  # modules to import when the project itself is not installed
    provided: dict[str, str]  # a hybrid's conda packages: distribution -> module
    source: str  # the folder the imported package must come from (the editable install)
    gpu: dict[str, Any]  # accelerator, and fix: module -> the command for its CUDA build
    project: str  # the doctor's part: requires-python, declared requirements, lock pins
    requirement_files: list[str]
    lock_file: str | None
    pins: bool  # the lock pins versions (venv, Poetry): pins.py reads them
    only: Literal["dependencies", "project"]  # the image build's steps: before or after the project


class ImportRow(TypedDict):
    """One import: what was imported, from where (origin: its file), its error ("": none)."""

    module: str
    distribution: str
    version: str
    error: str
    origin: str


class ProbeReport(TypedDict, total=False):
    """The one JSON report (after MARKER on stdout)."""

    python: str  # major.minor.micro
    executable: str
    prefix: str
    errors: list[str]  # what could not be checked
    distributions: dict[str, str]  # canonical name -> version
    broken: list[str]  # pip check's findings
    requires_python: str
    python_ok: bool | None  # None: nothing to check against
    lock: dict[str, list[str]]  # a lock's pins (venv, Poetry)
    declared: list[dict[str, Any]]  # requirement, name, group, installed, ok (, locked)
    imports: list[ImportRow]  # the project's package first
    seconds: dict[str, float]  # the dependency check's time ("pip check"), for the step times
    gpu: dict[str, Any]  # gpu.py's facts and verdict


def project_args(package: str, distribution: str, dependencies: list[Any]) -> ProbeArgs:
    """The arguments for a project: the set-up's, the doctor's and the image build's."""
    imports = {d["name"]: d["import"] for d in dependencies if d.get("import")}
    provided = {d["name"]: d["import"] for d in dependencies if d.get("owner") == "conda"}
    return {"package": package, "distribution": distribution, "hints": imports,
            "imports": list(imports.values()), "provided": provided}  # fmt: skip


try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name as canonical
except ImportError:  # a broken environment: the imports are still worth reporting
    Requirement = None  # type: ignore[assignment,misc]
try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:
        tomllib = None  # type: ignore[assignment]


def parse(text: str) -> Requirement | None:
    """A requirement that applies here (markers true, no extra), else None."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    return None if req.marker is not None and not req.marker.evaluate({"extra": ""}) else req


def fits(req: Requirement, version: str) -> bool:
    """Whether `version` satisfies the requirement (pre-releases included)."""
    return req.specifier.contains(version, prereleases=True)


def broken(dists: dict[str, metadata.Distribution], own: str) -> list[str]:
    """What `pip check` reports, from the installed metadata (uv environments have no pip); the
    project's own unfitting versions are the doctor's (`declared`)."""
    problems = []
    for key, dist in sorted(dists.items()):
        for req in filter(None, map(parse, dist.requires or [])):
            have = dists.get(canonical(req.name))
            label = f"{dist.metadata['Name']} {dist.version} requires {req}"
            if have is None:
                problems.append(f"{label}, which is not installed")
            elif key != own and not fits(req, have.version):
                problems.append(f"{label}, but {have.version} is installed")
    return problems


def declared_requirements(
    project: Path, pyproject: dict[str, Any], requirement_files: list[str], pins: Any
) -> list[tuple[str, str]]:
    """(group, requirement): [project]'s, PEP 735's dev group; with pins.py, venv's and Poetry's."""
    found = [("runtime", r) for r in pyproject.get("project", {}).get("dependencies", [])]
    found += [("dev", r) for r in pyproject.get("dependency-groups", {}).get("dev", [])]
    return found + (pins.declared(project, pyproject, requirement_files) if pins else [])


def check_declared(
    declared: list[tuple[str, str]], dists: dict[str, Any], pins: dict[str, list[str]] | None
) -> list[dict[str, Any]]:
    """Each declared requirement: installed version, whether it fits and is locked (given pins)."""
    rows: dict[str, dict[str, Any]] = {}
    for group, text in declared:
        req = parse(text)
        if req is None or canonical(req.name) in rows:
            continue
        dist = dists.get(canonical(req.name))
        version = dist.version if dist else ""
        row = {"requirement": text, "name": req.name, "group": group, "installed": version}
        row["ok"] = bool(dist) and fits(req, version)
        if pins is not None:
            row["locked"] = any(fits(req, v) for v in pins.get(canonical(req.name), []))
        rows[canonical(req.name)] = row
    return list(rows.values())


def module_for(dist: metadata.Distribution, name: str, hints: dict[str, str]) -> str:
    """The module to import for a distribution: the template's mapping (scikit-learn ->
    sklearn), else its own name if it provides it, else its first top-level package."""
    key = canonical(name)
    if key in hints:
        return hints[key]
    top = (dist.read_text("top_level.txt") or "").split()
    if not top:  # not built by setuptools: the packages and modules among its files
        parts = [f.parts for f in dist.files or []]
        top = sorted({p[0] for p in parts if len(p) > 1 and p[-1] == "__init__.py"})
        top += sorted({p[0][:-3] for p in parts if len(p) == 1 and p[0].endswith(".py")})
    top = [t for t in top if t.isidentifier() and not t.startswith("_")]
    guess = key.replace("-", "_")
    return guess if guess in top or not top else top[0]


def try_import(module: str, dist: str, version: str) -> ImportRow:
    """Import `module`; its row of the report (the error, if any, in one line)."""
    row: ImportRow = {"module": module, "distribution": dist, "version": version, "error": "",
                      "origin": ""}  # fmt: skip
    try:
        imported = importlib.import_module(module)
    except BaseException as exc:  # an import can raise anything, even SystemExit
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return row
    row["origin"] = str(getattr(imported, "__file__", "") or "")
    row["version"] = version or str(getattr(imported, "__version__", ""))
    return row


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def import_all(
    modules: list[tuple[str, tuple[str, str]]], here: list[str], weights: dict[str, int],
    meanwhile: Callable[[], None] = lambda: None,
) -> dict[str, ImportRow]:  # fmt: skip
    """Import each module once: `here` in this process, after `meanwhile`; the rest in one process
    per core, each taking the heaviest module left (`weights`: most files) whenever it is free,
    so that the first imports, which compile the bytecode, keep every core busy to the end."""
    info = dict(modules)
    queue: SimpleQueue[str] = SimpleQueue()
    for module in sorted((m for m in info if m not in here), key=lambda m: -weights.get(m, 1)):
        queue.put(module)
    found: list[dict[str, ImportRow]] = [{} for _ in range(min(cores(), queue.qsize()))]

    def helper(rows: dict[str, ImportRow]) -> None:
        """Import modules from the queue, one per line, in a process of its own; a process that
        dies fails its module's row, and the next module gets a new process."""
        proc: subprocess.Popen[str] | None = None
        while True:
            try:
                module = queue.get_nowait()
            except Empty:
                break
            if proc is None:
                proc = subprocess.Popen([sys.executable, "-I", __file__, "--import"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps([module, *info[module]]) + "\n")
                proc.stdin.flush()
                line = next((line for line in proc.stdout if line.startswith(MARKER)), "")
            except OSError:  # it died before it read the module
                line = ""
            if line:
                rows[module] = json.loads(line[len(MARKER) :])
            else:
                rows[module] = {"module": module, "distribution": info[module][0],
                                "version": info[module][1], "origin": "",
                                "error": f"the import process exited with {proc.wait()}"}  # fmt: skip
                proc = None
        if proc is not None:
            proc.communicate("")  # the end of its input: it exits

    # Daemons: a probe that fails (meanwhile raises) ends at once; its helpers at their input's end.
    threads = [threading.Thread(target=helper, args=(mine,), daemon=True) for mine in found]
    for thread in threads:
        thread.start()
    meanwhile()
    rows = {m: try_import(m, *info[m]) for m in here}
    for thread, theirs in zip(threads, found, strict=True):
        thread.join()
        rows.update(theirs)
    return rows


def own_package(row: ImportRow, source: str) -> ImportRow:
    """Prove the imported package is the project's own source: a module of the same name elsewhere
    (a dependency such as joblib, a stray folder on sys.path) imports fine and proves nothing."""
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


def tool_module(name: str) -> Any:
    """A module of the tool (gpu, pins), by its path: this file runs as a script (`python -I`)."""
    spec = importlib.util.spec_from_file_location(
        f"envtool_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_project(report: ProbeReport, args: ProbeArgs, dists: dict[str, Any]) -> None:
    """The doctor's part: requires-python, the declared requirements, a lock's pins."""
    project = Path(args["project"])
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8")) if tomllib else {}
    need = report["requires_python"] = pyproject.get("project", {}).get("requires-python", "")
    # None: nothing to check against (no TOML reader, or no requires-python), never a pass.
    report["python_ok"] = fits(Requirement(f"python{need}"), report["python"]) if need else None
    lock_file = args.get("lock_file")
    lock = project / lock_file if lock_file else None
    pins = tool_module("pins") if args.get("pins") else None  # venv and Poetry projects
    if pins and lock is not None and lock.is_file():
        report["lock"] = pins.lock_pins(lock, parse, canonical, tomllib)
    declared = declared_requirements(project, pyproject, args.get("requirement_files", []), pins)
    report["declared"] = check_declared(declared, dists, report.get("lock"))


def dependency_modules(
    own: Any, dists: dict[str, Any], args: ProbeArgs
) -> dict[str, tuple[str, str]]:
    """module -> (distribution, version) of the project's installed requirements and `provided`."""
    hints: dict[str, str] = {canonical(k): v for k, v in args.get("hints", {}).items()}
    modules: dict[str, tuple[str, str]] = {}
    for req in filter(None, map(parse, own.requires or [])):
        if have := dists.get(canonical(req.name)):
            modules.setdefault(module_for(have, req.name, hints), (req.name, have.version))
    for name, module in args.get("provided", {}).items():
        have = dists.get(canonical(name))
        modules.setdefault(module, (name, have.version if have else ""))
    return modules


def probe(args: ProbeArgs) -> ProbeReport:
    """Check this environment as `args` say; the report."""
    package, distribution, only = args["package"], args["distribution"], args.get("only")
    report: ProbeReport = {"python": ".".join(map(str, sys.version_info[:3])),
                           "executable": sys.executable, "prefix": sys.prefix, "errors": []}  # fmt: skip
    modules = {} if only == "dependencies" else {package: (distribution, "")}
    extra = {} if only == "project" else {m: (m, "") for m in args.get("imports", [])}
    dists: dict[str, metadata.Distribution] = {}
    scan = 0.0  # seconds: reading the installed distributions (part of the dependency check)
    if Requirement is None:
        report["errors"].append("`packaging` is not installed: only the imports were checked")
        modules.update(extra)
    else:
        t0 = time.perf_counter()
        for dist in metadata.distributions():
            if dist.metadata["Name"]:
                dists.setdefault(canonical(dist.metadata["Name"]), dist)
        own = canonical(distribution)
        report["distributions"] = {k: d.version for k, d in sorted(dists.items())}
        scan = time.perf_counter() - t0
        if only == "dependencies":  # the project comes later: the declared imports alone
            modules.update(extra)
        elif own in dists:
            modules[package] = (distribution, dists[own].version)
            if only != "project":
                for module, row in dependency_modules(dists[own], dists, args).items():
                    modules.setdefault(module, row)
        else:
            report["errors"].append(f"the project ({distribution}) is not installed")
            modules.update(extra)
    fixes = args.get("gpu", {}).get("fix", {})  # the frameworks gpu.py checks, and their fixes
    # The package (its origin is checked below) and a framework (the GPU check uses it) are
    # imported in this process; the rest spread over the machine's cores.
    here = [m for i, m in enumerate(modules) if i == 0 or m in fixes]
    found = {m: dists.get(canonical(d)) for m, (d, _) in modules.items()} if dists else {}
    weights = {m: len(dist.files or []) for m, dist in found.items() if dist}

    def checks() -> None:
        """The dependency check and the doctor's, while the other processes import."""
        if not dists:  # no `packaging`: nothing to check them with
            return
        t0 = time.perf_counter()
        report["broken"] = broken(dists, canonical(distribution))
        report["seconds"] = {"pip check": scan + time.perf_counter() - t0}
        if args.get("project"):
            check_project(report, args, dists)

    rows = import_all(list(modules.items()), here, weights, checks)
    report["imports"] = [rows[m] for m in modules]
    if args.get("source"):
        report["imports"][0] = own_package(report["imports"][0], args["source"])
    imported = {r["module"] for r in report["imports"] if not r["error"]}
    framework = next((m for m in fixes if m in imported), None)
    if framework:  # `gpu` given (config.gpu_check): PyTorch and TensorFlow projects have gpu.py
        gpu_check = tool_module("gpu").gpu_check
        report["gpu"] = gpu_check(framework, args["gpu"]["accelerator"], fixes[framework])
    return report


def failed(report: ProbeReport) -> bool:
    """Whether the report fails the check (an import failed, a requirement is broken)."""
    return bool(report.get("broken")) or any(r["error"] for r in report["imports"])


def table(report: ProbeReport) -> list[str]:
    """The imports, one row each (the set-up prints it; the Docker build's log shows it)."""
    rows, width = report["imports"], max([len(r["module"]) for r in report["imports"]] + [6])
    return [f"{'import'.ljust(width)}  {'version':<12}  result"] + [
        f"{r['module'].ljust(width)}  {(r['version'] or '-'):<12}  "
        + ("FAILED: " + r["error"] if r["error"] else "ok")
        for r in rows
    ]


def main(argv: list[str]) -> int:
    """The command line (the module's docstring); the exit status."""
    if argv[1:2] == ["--import"]:  # a helper process of import_all: a module per line of input
        tasks = os.fdopen(os.dup(0), encoding="utf-8")
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # a module that reads stdin reads nothing
        for line in tasks:
            print(MARKER + json.dumps(try_import(*json.loads(line))), flush=True)
        os._exit(0)  # done, even if an import left a thread running
    if argv[1:2] == ["--config"]:
        config = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        args = project_args(
            config["package_name"], config["project_slug"], config.get("dependencies", [])
        )
        if argv[3:4] == ["--only"] and argv[4] in ("dependencies", "project"):
            args["only"] = "dependencies" if argv[4] == "dependencies" else "project"
    else:
        args = json.loads(argv[1])
    report = probe(args)
    print(MARKER + json.dumps(report), flush=True)  # behind a marker: imports may print too
    lines = table(report) + [f"broken: {line}" for line in report.get("broken", [])]
    print("\n".join(lines), file=sys.stderr)
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
