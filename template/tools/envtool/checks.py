"""The doctor's report, and the checks that more than one manager runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import WINDOWS, say

# pip freeze leaves these out of requirements.lock: they are not drift.
UNLOCKED = {"pip", "setuptools", "wheel", "distribute"}


@dataclass
class Problem:
    what: str
    fix: str


class Report:
    """Prints each check as it runs and remembers the problems for the summary."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def section(self, title: str) -> None:
        say(f"\n== {title}")

    def ok(self, message: str) -> None:
        say(f"  ok    {message}")

    def info(self, message: str) -> None:
        say(f"  info  {message}")

    def problem(self, what: str, fix: str) -> None:
        self.problems.append(Problem(what, fix))
        say(f"  FAIL  {what}")
        say(f"        fix: {fix}")

    def summary(self) -> int:
        say()
        if not self.problems:
            say("Everything looks healthy.")
            return 0
        say(f"{len(self.problems)} problem(s) found:")
        for number, p in enumerate(self.problems, 1):
            say(f"  {number}. {p.what}\n     fix: {p.fix}")
        return 1


def last_line(text: str) -> str:
    """The line of a tool's output that says what went wrong: its error line, else its last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["(no output)"])[-1]


def corrupt_lock(report: Report, lock: Path, fix_lock: str) -> bool:
    """A lock file that is not TOML (a bad merge, a truncated write): `uv lock`/`poetry lock`
    fail on it too, so the fix moves it aside first and locks from pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10 (no TOML reader outside the env): the tools' check says it
        return False
    try:
        tomllib.loads(lock.read_text(encoding="utf-8"))
    except ValueError as exc:  # TOMLDecodeError and UnicodeDecodeError
        aside = f"{lock.name}.broken"
        move = f'move "{lock.name}" "{aside}"' if WINDOWS else f"mv {lock.name} {aside}"
        report.problem(
            f"{lock.name} is corrupt (not valid TOML: {exc})",
            f"{move}, then: {fix_lock}   (compare with the old file; git shows its history)",
        )
        return True
    return False


def compare_with_lock(
    report: Report, found: dict[str, Any], own: str, *, exact: bool, fix: str
) -> None:
    """Installed versions (the probe's) vs the lock's pins. A cross-platform lock (poetry) also
    pins packages this platform never installs: absent ones count only for an exact lock."""
    pins: dict[str, list[str]] = found.get("lock", {})
    have: dict[str, str] = found.get("distributions", {})
    differ = [
        f"{name} {have[name]} installed, {' or '.join(sorted(versions))} locked"
        for name, versions in sorted(pins.items())
        if name in have and name != own and versions and have[name] not in versions
    ]
    if exact:
        differ += [f"{name} locked but not installed" for name in sorted(pins) if name not in have]
        differ += [
            f"{name} {version} installed but not locked"
            for name, version in sorted(have.items())
            if name not in pins and name != own and name not in UNLOCKED
        ]
    if differ:
        report.problem(f"the environment differs from the lock file: {'; '.join(differ)}", fix)
    else:
        report.ok("installed versions match the lock file")
