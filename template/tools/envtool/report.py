"""The doctor's Report, which the managers' lock checks write to too, and reading a lock file."""

from __future__ import annotations

from pathlib import Path

from .running import ToolError, say
from .shell import WINDOWS


class Report:
    """Prints each check as it runs and remembers the problems (what, fix) for the summary."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def section(self, title: str) -> None:
        say(f"\n== {title}")

    def ok(self, message: str) -> None:
        say(f"  ok    {message}")

    def info(self, message: str) -> None:
        say(f"  info  {message}")

    def problem(self, what: str, fix: str) -> None:
        self.problems.append((what, fix))
        say(f"  FAIL  {what}\n        fix: {fix}")

    def summary(self) -> int:
        """Print the numbered problems and fixes (or that all is well); the exit status, 0 or 1."""
        if not self.problems:
            say("\nEverything looks healthy.")
            return 0
        say(f"\n{len(self.problems)} problem(s) found:")
        for number, (what, fix) in enumerate(self.problems, 1):
            say(f"  {number}. {what}\n     fix: {fix}")
        return 1


def last_line(text: str) -> str:
    """The line of a tool's output that says what went wrong: its error line, else its last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["(no output)"])[-1]


def lock_readable(report: Report, lock: Path, fix_lock: str) -> bool:
    """Whether the lock file is there and is TOML (a problem when not)."""
    corrupt = (
        corrupt_lock(lock, fix_lock)
        if lock.is_file()
        else ToolError(f"{lock.name} is missing", fix=fix_lock)
    )
    if corrupt:
        report.problem(corrupt.what, corrupt.fix)
    return corrupt is None


def or_make(command: str, make: str) -> str:
    """`command`, and the make target that does the same (once: not when they are the same)."""
    return command if command == make else f"{command}   (or: {make})"


def corrupt_lock(lock: Path, fix_lock: str) -> ToolError | None:
    """A ToolError when `lock` exists but is not TOML, with a fix that moves it aside first (it
    fails `uv lock`/`poetry lock` too); None when it reads (or Python 3.10 has no tomllib)."""
    try:
        import tomllib

        tomllib.loads(lock.read_text(encoding="utf-8"))
    except (ImportError, FileNotFoundError):
        return None
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError
        aside = f"{lock.name}.broken"
        move = f'move "{lock.name}" "{aside}"' if WINDOWS else f"mv {lock.name} {aside}"
        return ToolError(
            f"{lock.name} is corrupt (not valid TOML: {exc})",
            fix=f"{move}, then: {fix_lock}   (compare with the old file; git shows its history)",
        )
    return None
