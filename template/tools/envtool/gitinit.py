"""`git init` and a first commit of the generated files, so `copier update` works later.

Runs before the environment exists (.gitignore keeps env folders out). Skips, with a message,
when git is missing or the project is already inside a repository. Never fails the copy.
The first commit holds only the files the template wrote: a file that was in the destination
before (`.env`, a key, the user's notes) is left untracked, and named.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .base import ToolError, capture, run, say

MESSAGE = "Initial commit from the copier-mlops template"
LOCK_MESSAGE = "Add the lock file written by the environment tool"
SWITCH_MESSAGE = "Use {} for the environment (the chosen tool was not installed)"


def made_by_us(subject: str) -> bool:
    """Whether a commit subject is one of the tool's own commits (first commit, manager switch)."""
    return subject == MESSAGE or any(subject == SWITCH_MESSAGE.format(m) for m in ("venv",))


def git_init(
    project: Path,
    author_name: str = "",
    author_email: str = "",
    template: str = "",
    answers_file: str = ".copier-answers.yml",
) -> str:
    """Create the repository and its first commit; return what happened, in one sentence."""
    git = shutil.which("git")
    if not git:
        return "git is not installed: no repository created (install git, then run `git init`)"
    top = capture([git, "rev-parse", "--show-toplevel"], cwd=project)
    if top:
        return f"already inside the git repository {top.strip()}: no new repository created"
    init = [git]
    if not (capture([git, "config", "--get", "init.defaultBranch"], cwd=project) or "").strip():
        init += ["-c", "init.defaultBranch=main"]  # git's own default prints a long hint
    written = rendered_files(template, answers_file, project) if template else None
    run([*init, "init", "--quiet"], project)
    # What `git add --all` would add: every untracked file that no .gitignore excludes.
    candidates = capture([git, "ls-files", "-z", "--others", "--exclude-standard"], project) or ""
    untracked = [f for f in candidates.split("\0") if f]
    if written is None:
        chosen, left_out = untracked, []
    else:
        chosen = [f for f in untracked if f in written]
        left_out = [f for f in untracked if f not in chosen]
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
        shown = ", ".join(left_out[:10]) + (
            f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""
        )
        done += (
            f"; left out (not written by the template; add them yourself if you mean to): {shown}"
        )
    return done


def rendered_files(template: str, answers_file: str, project: Path) -> set[str] | None:
    """The files the template writes for this project's answers, as paths relative to the project:
    copier renders the same template, at the same commit, with the recorded answers and no
    tasks, into an empty folder. None when copier cannot be imported (this module run by hand in
    a generated project) or that render fails; the caller then commits what git would add."""
    try:
        import yaml
        from copier import run_copy
    except ImportError:
        return None
    try:
        recorded: dict[str, Any] = yaml.safe_load((project / answers_file).read_text("utf-8")) or {}
        data = {k: v for k, v in recorded.items() if not k.startswith("_")}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / project.name
            run_copy(
                template, out, data=data, answers_file=answers_file, vcs_ref="HEAD",
                defaults=True, unsafe=True, quiet=True, skip_tasks=True,
            )  # fmt: skip
            found: set[str] = set()
            for root, _, files in os.walk(out):
                found |= {(Path(root).relative_to(out) / n).as_posix() for n in files}
            return found
    except Exception:  # any failure: fall back to git's own view, never fail the copy
        return None


def commit_lock_file(project: Path, *locks: str) -> str | None:
    """Commit the lock file(s) on top of our own first commit, so `copier update` (which refuses
    a dirty tree) works at once. Only in a repository whose last commit is ours; never raises."""
    git = shutil.which("git")
    if not git:
        return None
    head = capture([git, "log", "-1", "--format=%s%n%an%n%ae"], cwd=project)
    if not head or not made_by_us(head.splitlines()[0]):
        return None  # not a repository the tool just made: leave the user's history alone
    new = [
        lock
        for lock in locks
        if (project / lock).is_file()
        and capture([git, "ls-files", "--error-unmatch", lock], cwd=project) is None
    ]
    if not new:
        return None
    _, name, email = [*head.splitlines(), "", ""][:3]
    try:
        run([git, "add", "--", *new], project)
        run([git, "-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "--quiet",
             "-m", LOCK_MESSAGE, "--", *new], project)  # fmt: skip
    except ToolError:
        return None
    return f"committed {', '.join(new)}"


def main(
    project: Path,
    author_name: str,
    author_email: str,
    template: str = "",
    answers_file: str = ".copier-answers.yml",
) -> int:
    say("copier-mlops: git repository")
    try:
        say("  " + git_init(project, author_name, author_email, template, answers_file))
    except ToolError as exc:
        say(f"  git: {exc.what}\n" + "\n".join("    " + line for line in exc.why.splitlines()))
        say(
            f"  Your files are all in place; to version them: cd {project} && git init "
            "&& git add -A && git commit"
        )
    return 0
