"""copier's tasks (`git-init`, `setup --from-copier`: __main__.py sends them here), and what only
the first run under copier does, with copier's own API: `git init` and a first
commit of only the files the template wrote (any other, `.env`, a key, notes, stays untracked and
named), so that `copier update` works later; and the fallback to a plain venv when the chosen tool
is missing, which re-renders the project so that every file says what really exists. Neither
ever fails the copy (copier deletes the project after a failed task).

copier's tasks run the template's copy of the tool (it has this module); generated projects do
not carry it: outside copier there is no template to render.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .cli import failure, parser, setup, start, write_result
from .config import Config
from .manager import Manager, manager_for
from .running import ToolError, capture, run, say, untracked

ANSWERS = ".copier-answers.yml"
MESSAGE = "Initial commit from the copier-mlops template"
LOCK_MESSAGE = "Add the lock file written by the environment tool"
SWITCH_MESSAGE = "Use {} for the environment (the chosen tool was not installed)"


def render(
    template: str, answers: dict[str, Any], dst: Path, answers_file: str = ANSWERS
) -> set[str]:
    """Render `template` (the commit copier checked out: vcs_ref HEAD) with `answers` and no
    tasks into `dst`; return the files written, relative to it."""
    from copier import run_copy

    run_copy(template, dst, data=answers, answers_file=answers_file, vcs_ref="HEAD",
             defaults=True, unsafe=True, quiet=True, skip_tasks=True, overwrite=True)  # fmt: skip
    return {
        (Path(root).relative_to(dst) / n).as_posix()
        for root, _, files in os.walk(dst)
        for n in files
    }


def recorded_answers(project: Path, answers_file: str = ANSWERS) -> dict[str, Any]:
    """The answers copier recorded for the project (its answers file), without its own `_` keys."""
    import yaml

    recorded = yaml.safe_load((project / answers_file).read_text(encoding="utf-8")) or {}
    return {k: v for k, v in recorded.items() if not k.startswith("_")}


def rendered_files(template: str, answers_file: str, project: Path) -> set[str] | None:
    """The files the template writes for this project's answers; None when that render fails
    (the caller then commits what git would add)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            answers = recorded_answers(project, answers_file)
            return render(template, answers, Path(tmp) / project.name, answers_file)
    except Exception:  # any failure: fall back to git's own view, never fail the copy
        return None


def offer_before_setup(project: Path, template: str) -> None:
    """With a person at the keyboard: when the manager's tool is missing, offer its alternatives
    before the set-up starts (it then builds what they chose; "stop" lets it fail with the retry
    command). Problems with the config are the set-up's to report."""
    try:
        manager = manager_for(Config.load(project))
    except ToolError:
        return
    try:
        manager.find_tool()
    except ToolError as exc:
        if manager.alternatives and template:
            offer_alternative(manager, exc, template)


def offer_alternative(manager: Manager, error: ToolError, template: str) -> None:
    """Offer another manager, and switch the project to it when they accept."""
    try:
        import questionary  # copier's own dependency
    except ImportError:
        return
    stop = f"Stop here: I will {error.fix.split(' (')[0]} and run the retry command"
    choices = {
        f"Use a plain .venv with pip instead ({alt}; no {manager.lock_file})": alt
        for alt in manager.alternatives
    }
    answer = questionary.select(f"{error.what}. What now?", choices=[*choices, stop]).ask()
    if answer in choices:
        alt = choices[answer]
        say(f"    switching the project to {alt}: {switch_manager(manager.project, alt, template)}")


def switch_manager(project: Path, new: str, template: str) -> str:
    """Re-render `project` for manager `new` (its tool's modules included); files the new
    answers no longer produce are removed when unchanged since generation; the answers file
    records the new manager; the change is committed on top of our first commit only."""
    import yaml

    answers = recorded_answers(project)
    changed, removed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        old = render(template, answers, Path(tmp) / "old")
        new_files = render(template, {**answers, "env_manager": new}, Path(tmp) / "new")
        for rel in sorted(new_files - {ANSWERS}):
            src, dst = Path(tmp) / "new" / rel, project / rel
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
                changed.append(rel)
        for rel in sorted(old - new_files):
            dst = project / rel
            if dst.is_file() and filecmp.cmp(Path(tmp) / "old" / rel, dst, shallow=False):
                dst.unlink()  # the template wrote it and nobody changed it
                removed.append(rel)
    # The answers file as copier wrote it, with only the manager changed (header comment kept).
    path = project / ANSWERS
    updated = re.sub(
        r"(?m)^env_manager: .*$", f"env_manager: {new}", path.read_text(encoding="utf-8")
    )
    if (yaml.safe_load(updated) or {}).get("env_manager") != new:
        raise ToolError(f"could not record env_manager: {new} in {ANSWERS}")
    path.write_text(updated, encoding="utf-8")
    changed.append(ANSWERS)
    head = our_head(project) if shutil.which("git") else None
    if head:
        run(["git", "add", "--all", "--", *changed, *removed], project, echo=False)
        run(["git", "-c", f"user.name={head[1]}", "-c", f"user.email={head[2]}", "commit", "--quiet",
             "-m", SWITCH_MESSAGE.format(new)], project, echo=False)  # fmt: skip
    removed_note = f", removed {', '.join(removed)}" if removed else ""
    return f"re-rendered {len(changed)} files for {new}{removed_note}" + (
        "; committed" if head else ""
    )


def our_head(project: Path) -> list[str] | None:
    """[subject, author name, email] of HEAD when it is one of the tool's own commits (first
    commit, manager switch): only then may the tool commit on top of it."""
    head = capture(["git", "log", "-1", "--format=%s%n%an%n%ae"], cwd=project)
    subject, name, email = [*(head or "").splitlines(), "", "", ""][:3]
    ours = subject in (MESSAGE, SWITCH_MESSAGE.format("venv"))  # venv: the one fallback
    return [subject, name, email] if ours else None


def commit_lock_file(project: Path, *locks: str) -> str | None:
    """Commit the lock file(s) on top of our own first commit, so `copier update` (which refuses
    a dirty tree) works at once. Only in a repository whose last commit is ours; never raises."""
    head = our_head(project) if shutil.which("git") else None
    new = untracked(project, *locks) if head else []
    if not head or not new:
        return None
    try:
        run(["git", "add", "--", *new], project)
        run(["git", "-c", f"user.name={head[1]}", "-c", f"user.email={head[2]}", "commit", "--quiet",
             "-m", LOCK_MESSAGE, "--", *new], project)  # fmt: skip
    except ToolError:
        return None
    return f"committed {', '.join(new)}"


def git_init(
    project: Path, author_name: str, author_email: str, written: set[str] | None = None
) -> str:
    """Create the repository and its first commit of the `written` files (None: all that git
    would add); return what happened, in one sentence."""
    git = shutil.which("git")
    if not git:
        return "git is not installed: no repository created (install git, then run `git init`)"
    top = capture([git, "rev-parse", "--show-toplevel"], cwd=project)
    if top:
        return f"already inside the git repository {top.strip()}: no new repository created"
    init = [git]
    if not (capture([git, "config", "--get", "init.defaultBranch"], cwd=project) or "").strip():
        init += ["-c", "init.defaultBranch=main"]  # git's own default prints a long hint
    run([*init, "init", "--quiet"], project)
    new = untracked(project)  # what `git add --all` would add
    chosen = [f for f in new if written is None or f in written]
    left_out = [f for f in new if f not in chosen]
    if chosen:
        run([git, "add", "--", *chosen], project)
    commit = [git]
    # A fresh machine has no identity; fall back to the answers so the commit does not fail.
    if not (capture([git, "config", "user.email"], cwd=project) or "").strip():
        commit += ["-c", f"user.email={author_email or 'copier-mlops@localhost'}"]
    if not (capture([git, "config", "user.name"], cwd=project) or "").strip():
        commit += ["-c", f"user.name={author_name or 'copier-mlops'}"]
    run([*commit, "commit", "--quiet", "--allow-empty", "-m", MESSAGE], project)
    done = "created a git repository with a first commit of the generated files"
    if left_out:
        more = f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""
        done += f"; left out (not written by the template; add them yourself if you mean to): {', '.join(left_out[:10])}{more}"
    return done


def git_init_task(
    project: Path, author_name: str, author_email: str, template: str, answers_file: str
) -> int:
    """copier's git-init task: git_init of what the template writes, reported; never fails."""
    say("copier-mlops: git repository")
    try:
        written = rendered_files(template, answers_file, project)
        say("  " + git_init(project, author_name, author_email, written))
    except ToolError as exc:
        say(f"  git: {exc.what}\n" + "\n".join("    " + line for line in exc.why.splitlines()))
        say(
            f"  Your files are all in place; to version them: cd {project} && git init && git add -A && git commit"
        )
    except BaseException as exc:  # never a non-zero exit under copier: it would delete the project
        say(f"  git: unexpected {type(exc).__name__}: {exc}; your files are all in place")
    return 0


def main(argv: list[str] | None = None) -> int:
    """copier's tasks: git-init, or the set-up, which offers another manager when the tool is
    missing (a person at the keyboard) and commits the lock file on our first commit. Never a
    non-zero exit: copier would delete the project."""
    cli = parser(["setup", "git-init"])
    cli.add_argument("--from-copier", action="store_true", help="exit 0 even on failure")
    cli.add_argument("--template", default="", help="the template copier renders")
    for option in ("--author-name", "--author-email", "--answers-file"):
        cli.add_argument(option, default=".copier-answers.yml" if "answers" in option else "")
    args = cli.parse_args(argv)
    project = start(args)
    if args.command == "git-init":
        return git_init_task(
            project, args.author_name, args.author_email, args.template, args.answers_file
        )
    started = time.time()  # wall-clock start and end: the bench tells copier's time from ours
    result: dict[str, Any] = {"status": "failed", "steps": []}
    try:
        if not args.no_input and sys.stdin and sys.stdin.isatty():
            offer_before_setup(project, args.template)
        result = setup(project, lambda manager: commit_lock_file(project, *manager.lock_files()))
    except BaseException as exc:
        failure(project, result, "setup", ToolError(f"unexpected {type(exc).__name__}: {exc}"))
    write_result(project, {**result, "started_at": started, "finished_at": time.time()})
    return 0 if result["status"] == "ok" or args.from_copier else 1
