"""What only the first run under copier does, with copier's own API: the first commit holds only
the files the template wrote, and the fallback to a plain venv when the chosen tool is missing
re-renders the project so that every file says what really exists.

copier's tasks run the template's copy of the tool (it has this module); generated projects do
not carry it: outside copier there is no template to render.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .config import Config
from .gitinit import MESSAGE, untracked
from .loading import manager_for
from .manager import Manager
from .running import ToolError, capture, run, say

ANSWERS = ".copier-answers.yml"
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
