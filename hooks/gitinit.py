"""`git init` and a first commit of the generated files, so `copier update` works later.

Runs before the environment exists (.gitignore keeps env folders out). Skips, with a message,
when git is missing or the project is already inside a repository. Never fails the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .base import HookError, capture, run, say

MESSAGE = "Initial commit from the copier-mlops template"
LOCK_MESSAGE = "Add the lock file written by the environment hook"
SWITCH_MESSAGE = "Use {} for the environment (the chosen tool was not installed)"


def made_by_us(subject: str) -> bool:
    """Whether a commit subject is one of the hook's own commits (first commit, manager switch)."""
    return subject == MESSAGE or any(subject == SWITCH_MESSAGE.format(m) for m in ("venv",))


def git_init(project: Path, author_name: str = "", author_email: str = "") -> str:
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
    run([*init, "init", "--quiet"], project)
    run([git, "add", "--all"], project)
    commit = [git]
    # A fresh machine has no identity; fall back to the answers so the commit does not fail.
    if not (capture([git, "config", "user.email"], cwd=project) or "").strip():
        commit += ["-c", f"user.email={author_email or 'copier-mlops@localhost'}"]
    if not (capture([git, "config", "user.name"], cwd=project) or "").strip():
        commit += ["-c", f"user.name={author_name or 'copier-mlops'}"]
    run([*commit, "commit", "--quiet", "-m", MESSAGE], project)
    return "created a git repository with a first commit of the generated files"


def commit_lock_file(project: Path, lock: str) -> str | None:
    """Commit the lock file on top of our own first commit, so `copier update` (which refuses a
    dirty tree) works at once. Only in a repository whose last commit is ours; never raises."""
    git = shutil.which("git")
    if not git or not (project / lock).is_file():
        return None
    head = capture([git, "log", "-1", "--format=%s%n%an%n%ae"], cwd=project)
    if not head or not made_by_us(head.splitlines()[0]):
        return None  # not a repository the hook just made: leave the user's history alone
    if capture([git, "ls-files", "--error-unmatch", lock], cwd=project) is not None:
        return None
    _, name, email = [*head.splitlines(), "", ""][:3]
    try:
        run([git, "add", "--", lock], project)
        run([git, "-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "--quiet",
             "-m", LOCK_MESSAGE, "--", lock], project)  # fmt: skip
    except HookError:
        return None
    return f"committed {lock}"


def main(project: Path, author_name: str, author_email: str) -> int:
    say("copier-mlops: git repository")
    try:
        say("  " + git_init(project, author_name, author_email))
    except HookError as exc:
        say(f"  git: {exc.what}\n" + "\n".join("    " + line for line in exc.why.splitlines()))
        say(
            f"  Your files are all in place; to version them: cd {project} && git init "
            "&& git add -A && git commit"
        )
    return 0
