"""`git init` and a first commit of the generated files, so `copier update` works later. Skips,
saying so, without git or inside a repository; never fails the copy. Under copier the commit holds
only the files the template wrote: any other (`.env`, a key, notes) stays untracked, and named."""

from __future__ import annotations

import shutil
from pathlib import Path

from .running import ToolError, capture, run, say

MESSAGE = "Initial commit from the copier-mlops template"


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


def untracked(project: Path, *files: str) -> list[str]:
    """The files (of `files`; all without) that git does not track nor ignore; [] outside git."""
    out = capture(
        ["git", "ls-files", "-z", "--others", "--exclude-standard", "--", *files], project
    )
    found = [f for f in (out or "").split("\0") if f]
    return [f for f in files if f in found] if files else found  # in the order asked for


def main(project: Path, author_name: str, author_email: str, written: set[str] | None) -> int:
    """git_init, reported; never fails (copier deletes the project after a failed task)."""
    say("copier-mlops: git repository")
    try:
        say("  " + git_init(project, author_name, author_email, written))
    except ToolError as exc:
        say(f"  git: {exc.what}\n" + "\n".join("    " + line for line in exc.why.splitlines()))
        say(
            f"  Your files are all in place; to version them: cd {project} && git init && git add -A && git commit"
        )
    except BaseException as exc:  # never a non-zero exit under copier: it would delete the project
        say(f"  git: unexpected {type(exc).__name__}: {exc}; your files are all in place")
    return 0
