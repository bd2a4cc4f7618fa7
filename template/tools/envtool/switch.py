"""Switch a freshly generated project to another environment manager (the interactive fallback
when uv, Poetry or conda is missing), so that every file says what really exists.

Only under copier: it re-renders the project from the very template copier is running (its
task passes it as --template), with the recorded answers and `env_manager` changed, through
copier's own API. Files the new answers no longer produce are removed when unchanged since
generation; the answers file records the new manager; the change is committed on top of our
first commit (never into a user's history).
"""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
from pathlib import Path

from .base import ToolError, capture, run
from .gitinit import MESSAGE, SWITCH_MESSAGE

ANSWERS = ".copier-answers.yml"


def available(template: str) -> bool:
    """Whether this run can re-render: copier importable and the template given."""
    try:
        import copier  # noqa: F401  (copier's own Python runs the tool under copier)
        import yaml  # noqa: F401
    except ImportError:
        return False
    return bool(template) and (Path(template) / "copier.yml").is_file()


def _render(template: str, answers: dict[str, object], dst: Path) -> set[str]:
    from copier import run_copy

    # vcs_ref HEAD: the commit copier checked out for this very copy, not the newest tag.
    run_copy(template, dst, data=answers, vcs_ref="HEAD", defaults=True, unsafe=True,
             quiet=True, skip_tasks=True, overwrite=True)  # fmt: skip
    return {
        p.relative_to(dst).as_posix()
        for p in dst.rglob("*")
        if p.is_file() and not p.relative_to(dst).as_posix().startswith("tools/envtool/")
    }


def switch_manager(project: Path, new: str, template: str) -> str:
    """Re-render `project` for manager `new`; return what changed, in one sentence."""
    import yaml

    path = project / ANSWERS
    text = path.read_text(encoding="utf-8")
    recorded = yaml.safe_load(text) or {}
    answers = {k: v for k, v in recorded.items() if not k.startswith("_")}
    with tempfile.TemporaryDirectory() as tmp:
        old = _render(template, answers, Path(tmp) / "old")
        new_files = _render(template, {**answers, "env_manager": new}, Path(tmp) / "new")
        changed, removed = [], []
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
    updated = re.sub(r"(?m)^env_manager: .*$", f"env_manager: {new}", text)
    if (yaml.safe_load(updated) or {}).get("env_manager") != new:
        raise ToolError(f"could not record env_manager: {new} in {ANSWERS}")
    path.write_text(updated, encoding="utf-8")
    changed.append(ANSWERS)
    committed = _commit(project, changed, removed, new)
    return (
        f"re-rendered {len(changed)} files for {new}"
        + (f", removed {', '.join(removed)}" if removed else "")
        + (f"; {committed}" if committed else "")
    )


def _commit(project: Path, changed: list[str], removed: list[str], new: str) -> str | None:
    """Commit the switch on top of our own first commit only."""
    git = shutil.which("git")
    head = capture([git, "log", "-1", "--format=%s%n%an%n%ae"], cwd=project) if git else None
    if not git or not head or head.splitlines()[0] != MESSAGE:
        return None
    _, name, email = [*head.splitlines(), "", ""][:3]
    run([git, "add", "--all", "--", *changed, *removed], project, echo=False)
    ident = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    run([git, *ident, "commit", "--quiet", "-m", SWITCH_MESSAGE.format(new)], project, echo=False)
    return "committed"
