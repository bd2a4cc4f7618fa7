"""Update every project of a class to a template release with `copier update`, in parallel.

    python -m staff fleet projects                    # the roster's output folder
    python -m staff fleet projects/s001 projects/s002 --vcs-ref v0.2.0 --dry-run

Each argument is a project folder, or a folder of projects (roster's --out: its roster report
names the projects it made, so a deleted one is reported missing). Per project, in its own git
repository: a repository with uncommitted work, untracked files included, is never touched
(`dirty`); otherwise `copier update --trust --defaults` (recorded answers kept, new questions
take their defaults), and the result is one of
  updated    the release applied cleanly; committed ("Update to copier-mlops template ...")
             unless --no-commit
  conflicts  the student and the release changed the same lines: the files are listed, and left
             uncommitted with copier's markers (git status: "both modified") for the owner to
             resolve and commit; --on-conflict revert restores the last commit instead
  current    already at the target release: nothing to do
  dirty      skipped: uncommitted work (commit or stash it, then run again)
  failed     missing folder, not a git repository, not a copier project, or copier's error
             (the tree is restored to the last commit: the update started from a clean one)
Projects whose dependency files changed (pyproject.toml's dependency tables, environment.yml,
requirements*.txt, .python-version, poetry.toml) are flagged: their owners run `make env`.
--dry-run does the same update in a throwaway clone of each project and reports what would
happen; the projects are not touched. Running again is safe: updated projects are `current`,
conflicted ones are reported again (unresolved) and left as they are.
Report: fleet-report.json and .csv (in the folder of projects given, else the current folder;
or --report), copier's output per project in fleet-logs/ beside it. Exit status: 0 every
project updated or current, 1 some need a look (conflicts, dirty, failed), 2 nothing was
attempted (bad arguments).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml  # copier's own dependency
from packaging.version import InvalidVersion, Version  # copier's own dependency

from staff import batch

ANSWERS_FILE = batch.ANSWERS_FILE
LOG_DIR = batch.FLEET_LOGS
ROSTER_REPORT = "roster-report.json"
COMMIT_MESSAGE = "Update to copier-mlops template {to} (from {frm})"
# Files whose change means the environment must be rebuilt. In pyproject.toml only these tables
# count (a new ruff rule does not need a new environment).
DEPENDENCY_FILES = re.compile(
    r"^(pyproject\.toml|environment\.ya?ml|requirements[^/]*\.txt|\.python-version|poetry\.toml)$"
)
PYPROJECT_DEPENDENCY_KEYS = (
    ("build-system",),
    ("project", "requires-python"),
    ("project", "dependencies"),
    ("project", "optional-dependencies"),
    ("dependency-groups",),
    ("tool", "uv"),
    ("tool", "poetry"),
)
# Git's conflict markers, as copier's inline conflicts write them.
MARKER_START, MARKER_END = re.compile(r"^<{7} "), re.compile(r"^>{7} ")


class FleetError(batch.BatchError):
    """A problem with the arguments: nothing is updated."""


class AnswersError(Exception):
    """One project's answers file cannot be read: that project fails, the others go on."""


@dataclass
class Result:
    """One project's update: its status, versions, conflicts and changed dependency files."""

    id: str
    path: str
    status: str  # updated | conflicts | current | dirty | failed
    from_version: str = ""
    to_version: str = ""
    conflicts: list[str] = field(default_factory=list)  # files with markers, and .rej files
    dependencies_changed: list[str] = field(default_factory=list)  # -> `make env`
    detail: str = ""
    seconds: float = 0.0
    log: str = ""


NEEDS_A_LOOK = ("conflicts", "dirty", "failed")


# ------------------------------------------------------------------------------ git
def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in `repo` and return its stdout; CalledProcessError on failure unless check=False."""
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(
            proc.returncode, ["git", *args], proc.stdout, proc.stderr
        )
    return proc.stdout


def changed_paths(repo: Path) -> list[str]:
    """Every path `git status` lists (untracked files one by one, ignored ones not)."""
    out = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = out.split("\0")
    paths, i = [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename carries its source as the next entry
            i += 1
    return paths


def parse_answers(text: str | None) -> dict[str, Any]:
    """An answers file's mapping ({} for no file); AnswersError says why it cannot be read."""
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise AnswersError(f"unreadable {ANSWERS_FILE}: not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnswersError(f"unreadable {ANSWERS_FILE}: not a mapping of question: answer")
    return data


def recorded_commit(text: str | None) -> str:
    """The template release an answers file records ("" when it cannot tell)."""
    try:
        return str(parse_answers(text).get("_commit", ""))
    except AnswersError:
        return ""


def committed(repo: Path, path: str) -> str | None:
    """A file's text at HEAD in `repo` (None when HEAD does not have it)."""
    proc = subprocess.run(
        ["git", "show", f"HEAD:{path}"],
        cwd=repo,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def identity(repo: Path) -> list[str]:
    """A machine without a git identity still commits (as the tool), like the git-init hook."""
    args = []
    if not git(repo, "config", "user.email", check=False).strip():
        args += ["-c", "user.email=copier-mlops@localhost"]
    if not git(repo, "config", "user.name", check=False).strip():
        args += ["-c", "user.name=copier-mlops fleet"]
    return args


def restore(repo: Path) -> None:
    """Back to the last commit. Only called on a tree that was clean before the update (so
    nothing of the owner's is lost); ignored files (.venv, data) are not touched."""
    git(repo, "reset", "--quiet", "--hard", "HEAD")
    git(repo, "clean", "--quiet", "-fd")


# ------------------------------------------------------------------------------ versions
def git_url(src: str) -> str:
    """copier's shortcuts for hosted templates, as `git ls-remote` needs them."""
    for prefix, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if src.startswith(prefix):
            return host + src.removeprefix(prefix).removesuffix(".git") + ".git"
    return src


@lru_cache(maxsize=32)
def newest_release(src: str) -> str | None:
    """The tag `copier update` goes to without --vcs-ref: the highest PEP 440 version, final
    releases only. None when it cannot be told (then copier itself decides)."""
    proc = subprocess.run(
        ["git", "ls-remote", "--tags", git_url(src)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        return None
    best: tuple[Version, str] | None = None
    for line in proc.stdout.splitlines():
        tag = line.split("refs/tags/", 1)[-1].removesuffix("^{}")
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        if not version.is_prerelease and (best is None or version > best[0]):
            best = (version, tag)
    return best[1] if best else None


# ------------------------------------------------------------------------------ inspection
def conflict_files(repo: Path, paths: Sequence[str]) -> list[str]:
    """Files git holds unmerged, files among `paths` with conflict markers, and .rej files."""
    found = set(git(repo, "diff", "--name-only", "--diff-filter=U").split())
    for rel in paths:
        file = repo / rel
        if rel.endswith(".rej"):
            found.add(rel)
            continue
        if not file.is_file() or file.stat().st_size > 5_000_000:
            continue
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        start = next((i for i, line in enumerate(lines) if MARKER_START.match(line)), None)
        if start is not None and any(MARKER_END.match(line) for line in lines[start:]):
            found.add(rel)
    return sorted(found)


def dependency_view(name: str, text: str | None) -> Any:
    """What of a dependency file decides the environment (None: the file does not exist)."""
    if text is None or name != "pyproject.toml":
        return text
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: compare the whole file
        return text
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text  # conflict markers: whatever it holds, it changed
    view = []
    for keys in PYPROJECT_DEPENDENCY_KEYS:
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        view.append(value)
    return view


def dependency_changes(repo: Path, paths: Sequence[str]) -> list[str]:
    """The dependency files among `paths` whose environment-deciding parts differ from HEAD."""
    changed = []
    for rel in paths:
        if not DEPENDENCY_FILES.match(rel):
            continue  # only the project's top-level files define its environment
        file = repo / rel
        now = file.read_text(encoding="utf-8", errors="replace") if file.is_file() else None
        if dependency_view(rel, committed(repo, rel)) != dependency_view(rel, now):
            changed.append(rel)
    return sorted(changed)


# ------------------------------------------------------------------------------ one project
@dataclass
class Options:
    """What applies to every project of a run: target release, commit, conflicts, dry run, logs."""

    vcs_ref: str | None
    commit: bool
    on_conflict: str  # keep | revert
    dry_run: bool
    timeout: float
    logs: Path


def copier_update(project: Path, opts: Options) -> tuple[int, str, list[str]]:
    """Run `copier update --trust --defaults` in `project`: (exit status, output, command)."""
    cmd = [sys.executable, "-m", "copier", "update", "--trust", "--defaults"]
    cmd += ["--conflict", "inline"]  # markers git understands; the default, made explicit
    if opts.vcs_ref:
        cmd += ["--vcs-ref", opts.vcs_ref]
    return (*batch.run_command(cmd, opts.timeout, cwd=project), cmd)


def inspect_pending(project: Path, res: Result, paths: list[str]) -> Result:
    """A dirty tree: an update an earlier run left (conflicts, or --no-commit), or the owner's
    own work. Either way it is not touched."""
    res.from_version = recorded_commit(committed(project, ANSWERS_FILE))
    answers = project / ANSWERS_FILE
    now = recorded_commit(answers.read_text(encoding="utf-8")) if answers.is_file() else ""
    if now and now != res.from_version:
        res.to_version = now
        res.conflicts = conflict_files(project, paths)
        res.dependencies_changed = dependency_changes(project, paths)
        res.status = "conflicts" if res.conflicts else "updated"
        res.detail = "an earlier update, not committed yet" + (
            ": resolve the conflicts, then git add and git commit" if res.conflicts else ""
        )
        return res
    res.status = "dirty"
    shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
    res.detail = f"uncommitted work ({len(paths)} path(s): {shown}): commit or stash it, run again"
    return res


def update_project(name: str, project: Path, opts: Options) -> Result:
    """Update one project: its Result, with the failure's reason if any and the seconds it took."""
    started = time.monotonic()
    res = Result(id=name, path=str(project), status="failed")
    try:
        finished = update_checked(project, res, opts)
    except AnswersError as exc:
        res.status, res.detail = "failed", f"{exc} (fix it in git, commit, run again)"
        finished = res
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        res.status, res.detail = "failed", f"{exc.__class__.__name__}: {exc}"
        finished = res
    finished.seconds = round(time.monotonic() - started, 1)
    return finished


def update_checked(project: Path, res: Result, opts: Options) -> Result:
    """Fail a folder that is no git copier project, inspect a dirty one, else update it."""
    if not project.is_dir():
        res.detail = "not a folder" if project.exists() else "missing folder (deleted or moved?)"
        return res
    top = git(project, "rev-parse", "--show-toplevel", check=False).strip()
    if not top or Path(top).resolve() != project.resolve():
        res.detail = (
            "not a git repository (copier update needs one: git init && git add -A && git commit)"
            if not top
            else f"not the top of a git repository (it is inside {top})"
        )
        return res
    if committed(project, ANSWERS_FILE) is None:
        res.detail = f"not a copier project (no committed {ANSWERS_FILE})"
        return res
    paths = changed_paths(project)
    if paths:
        return inspect_pending(project, res, paths)
    recorded = parse_answers(committed(project, ANSWERS_FILE))
    res.from_version = str(recorded.get("_commit", ""))
    src = str(recorded.get("_src_path", ""))
    target = opts.vcs_ref or (newest_release(src) if src else None)
    if target and target == res.from_version:
        res.status, res.to_version, res.detail = "current", target, "already at this release"
        return res
    if opts.dry_run:
        with tempfile.TemporaryDirectory(prefix="fleet-dry-run-") as tmp:
            clone = Path(tmp) / project.name
            git(project, "clone", "--quiet", "--no-hardlinks", str(project), str(clone))
            run_update(clone, res, opts, label=project)
        res.detail = ("dry run, nothing changed: " + res.detail).rstrip(": ")
        return res
    return run_update(project, res, opts, label=project)


def run_update(repo: Path, res: Result, opts: Options, label: Path) -> Result:
    """Run copier update in `repo`, log it, then classify: failed, current, conflicts or updated."""
    code, output, cmd = copier_update(repo, opts)
    log = opts.logs / f"{res.id}.log"
    log.write_text(f"$ cd {label} && {' '.join(cmd)}\n{output}", encoding="utf-8")
    res.log = str(log)
    paths = changed_paths(repo)
    if code != 0:
        res.status, res.detail = "failed", batch.failure_reason(output)
        if paths and not opts.dry_run:
            restore(repo)  # a half-applied update helps nobody; the tree was clean before
            res.detail += " (project restored to its last commit)"
        return res
    answers = repo / ANSWERS_FILE
    res.to_version = recorded_commit(answers.read_text(encoding="utf-8"))
    if not paths:
        res.status, res.detail = "current", "already at this release"
        return res
    res.conflicts = conflict_files(repo, paths)
    res.dependencies_changed = dependency_changes(repo, paths)
    if res.conflicts:
        res.status = "conflicts"
        if opts.on_conflict == "revert" and not opts.dry_run:
            restore(repo)
            res.detail = "reverted to the last commit (--on-conflict revert)"
        else:
            res.detail = "left uncommitted with markers: resolve, git add, git commit"
        return res
    res.status = "updated"
    if opts.commit and not opts.dry_run:
        git(repo, "add", "--all")
        message = COMMIT_MESSAGE.format(to=res.to_version, frm=res.from_version)
        # --no-verify: a student's own pre-commit hooks (ruff...) judge their code, not ours.
        git(repo, *identity(repo), "commit", "--quiet", "--no-verify", "-m", message)
        res.detail = "committed"
    elif not opts.dry_run:
        res.detail = "not committed (--no-commit): review, then git add -A and git commit"
    return res


# ------------------------------------------------------------------------------ inputs
def is_log_dir(path: Path) -> bool:
    """Whether a folder among the projects is a log folder or hidden, not a project."""
    return path.name in (LOG_DIR, batch.ROSTER_LOGS, batch.PROVISION_LOGS) or path.name.startswith(
        "."
    )


def projects_of(paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """(id, folder) per project: a folder with an answers file is a project; another folder
    holds projects (its subfolders, and every project its roster report lists); a path that
    does not exist is a project that went missing."""
    found: dict[Path, str] = {}
    for given in paths:
        path = given.expanduser().absolute()
        if not path.is_dir() or (path / ANSWERS_FILE).exists() or (path / ".git").exists():
            found.setdefault(path, path.name)
            continue
        members = [p for p in sorted(path.iterdir()) if p.is_dir() and not is_log_dir(p)]
        report = path / ROSTER_REPORT
        if report.is_file():
            for row in json.loads(report.read_text(encoding="utf-8")):
                if row.get("path") and row.get("status") != "failed":
                    members.append(Path(row["path"]))
        for member in members:
            found.setdefault(member.absolute(), member.name)
    names = list(found.values())
    # Same folder name under two parents: the full path tells them apart.
    return sorted(((n if names.count(n) == 1 else str(p)), p) for p, n in found.items())


# ------------------------------------------------------------------------------ report
def summary(results: Sequence[Result], dry_run: bool) -> str:
    """The counts per status, each project needing a look, and those whose dependencies changed."""
    counts = {s: sum(r.status == s for r in results) for s in (*NEEDS_A_LOOK, "updated", "current")}
    lines = [
        ("Dry run (nothing changed): " if dry_run else "")
        + f"{len(results)} projects: {counts['updated']} updated, {counts['conflicts']} with "
        f"conflicts, {counts['current']} already current, {counts['dirty']} skipped (uncommitted "
        f"work), {counts['failed']} failed"
    ]
    for r in results:
        if r.status in NEEDS_A_LOOK:
            lines.append(f"  {r.id}: {r.status}: {r.detail}")
            if r.conflicts:
                lines.append(f"    conflicts in: {', '.join(r.conflicts)}")
            if r.log:
                lines.append(f"    log: {r.log}")
    rebuild = [r.id for r in results if r.dependencies_changed]
    if rebuild:
        lines.append(
            f"Dependencies changed in {len(rebuild)} project(s) ({', '.join(rebuild)}): their "
            "owners rebuild the environment with `make env` after pulling the update."
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    """fleet's command line: paths, --vcs-ref, --dry-run, --no-commit, --on-conflict, batch's."""
    parser = batch.parser("python -m staff fleet", __doc__ or "")
    parser.add_argument("paths", nargs="+", type=Path, help="project folders or folders of them")
    parser.add_argument(
        "--vcs-ref", help="template release to update to, e.g. v0.2.0 (default: the newest tag)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="update throwaway clones and report what would happen; the projects are not touched",
    )
    parser.add_argument(
        "--no-commit",
        dest="commit",
        action="store_false",
        help="leave clean updates uncommitted for review (default: commit them)",
    )
    parser.add_argument(
        "--on-conflict",
        choices=("keep", "revert"),
        default="keep",
        help="keep: leave the markers for the owner (default); revert: restore the last commit",
    )
    batch.add_batch_options(
        parser,
        doing="updated",
        timeout=600,
        per="update",
        report="default: fleet-report in the folder of projects",
    )
    return parser


def report_base(args: argparse.Namespace) -> Path:
    """The report's path without suffix: --report, else in the one folder of projects, else here."""
    if args.report:
        return args.report.absolute()
    name = "fleet-dry-run-report" if args.dry_run else "fleet-report"
    (first,) = args.paths[:1]
    folder = first.expanduser().absolute()
    holds_projects = len(args.paths) == 1 and folder.is_dir() and not (folder / ".git").exists()
    return (folder if holds_projects else Path.cwd()) / name


def progress_note(res: Result) -> str:
    """A project's progress note: status, versions, conflicts, dependency flag, failure detail."""
    note = res.status
    if res.status in ("updated", "conflicts"):
        note += f" {res.from_version} -> {res.to_version}"
    if res.conflicts:
        note += f" ({', '.join(res.conflicts)})"
    if res.dependencies_changed:
        note += " [dependencies changed: make env]"
    if res.status in ("dirty", "failed"):
        note += f": {res.detail}"
    return note


def run(args: argparse.Namespace) -> tuple[list[Result], Path]:
    """Every project updated, `--jobs` at a time; the results by id, and the report path."""
    batch.check_setup("fleet", args.jobs)
    if shutil.which("git") is None:
        raise FleetError("git is not installed: copier update needs it")
    projects = projects_of(args.paths)
    if not projects:
        raise FleetError(f"no projects in {', '.join(map(str, args.paths))}")
    base = report_base(args)
    logs = base.parent / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    opts = Options(args.vcs_ref, args.commit, args.on_conflict, args.dry_run, args.timeout, logs)
    progress = batch.Progress(len(projects), bad_label="need a look")

    def crashed(project: tuple[str, Path], reason: str) -> Result:
        """A failed Result for a project whose update raised an unexpected error."""
        return Result(id=project[0], path=str(project[1]), status="failed", detail=reason)

    def done(res: Result) -> None:
        """Print one finished project's line on the progress bar."""
        progress.report(res.id, progress_note(res), res.seconds, bad=res.status in NEEDS_A_LOOK)

    try:
        results = batch.run_all(
            projects,
            lambda project: update_project(*project, opts),
            jobs=args.jobs,
            crashed=crashed,
            done=done,
        )
    finally:
        progress.close()
    return sorted(results, key=lambda r: r.id), base


def main(argv: Sequence[str] | None = None) -> int:
    """fleet's entry point: parse `argv`, update every project, report; the exit status."""
    args = build_parser().parse_args(argv)
    return batch.finish(
        "fleet",
        Result,
        lambda: run(args),
        lambda results: summary(results, args.dry_run),
        lambda r: r.status in NEEDS_A_LOOK,
    )


if __name__ == "__main__":
    sys.exit(main())
