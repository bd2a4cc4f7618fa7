"""Answers-file migration: give answers that a newer template asks for, without touching others.

Run by copier's `_migrations` in the `before` stage (copier.yml), with copier's own Python, in the
project folder, before copier reads the answers it updates with:

    python migrations/answers.py set-missing .copier-answers.yml ci=none jupyter_kernel=false

Only keys absent from the answers file are added (a user's explicit answer always wins). The
file is appended to, not rewritten, so its header and every other line stay byte for byte.
Values are YAML scalars (`false`, `none`, `3.12`), typed as copier stores them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # copier's own dependency: always there in the Python that runs this


class MigrationError(Exception):
    """Something the user must fix; the message says what."""


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """`["ci=none", "jupyter_kernel=false"]` -> `{"ci": "none", "jupyter_kernel": False}`."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise MigrationError(f"'{item}' is not KEY=VALUE with KEY a question name")
        values[key] = yaml.safe_load(raw) if raw else ""
    return values


def read_answers(path: Path) -> dict[str, Any]:
    """The answers file's mapping; MigrationError when it is missing, not YAML or not a mapping."""
    if not path.is_file():
        raise MigrationError(
            f"{path} not found: run `copier update` in the project folder (where copier wrote "
            "its answers file)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MigrationError(
            f"{path} is not valid YAML{where}: fix it or restore it from git and retry"
        ) from exc
    if not isinstance(data, dict):
        raise MigrationError(f"{path} is not a YAML mapping: restore it from git and retry")
    return data


def set_missing(path: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    """Append `values` whose keys the answers file lacks; return what was added."""
    current = read_answers(path)
    added = {k: v for k, v in values.items() if k not in current}
    if added:
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text += "\n"
        text += yaml.safe_dump(added, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
    return added


def main(argv: Sequence[str] | None = None) -> int:
    """The `set-missing` command: add the missing answers and say so; 1 on a MigrationError."""
    parser = argparse.ArgumentParser(
        prog="migrations/answers.py", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("set-missing", help="add KEY=VALUE answers the answers file lacks")
    cmd.add_argument("answers_file", type=Path)
    cmd.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    # copier exports the migration's context: VERSION_PEP440_FROM/TO, VERSION_CURRENT, STAGE.
    env = os.environ
    label = (
        f"copier-mlops migration {env.get('VERSION_CURRENT', '(manual)')} "
        f"({env.get('VERSION_PEP440_FROM', '?')} -> {env.get('VERSION_PEP440_TO', '?')})"
    )
    try:
        added = set_missing(args.answers_file, parse_assignments(args.assignments))
    except MigrationError as exc:
        # Non-zero: copier stops the update before it has changed any project file.
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    if added:
        kept = ", ".join(f"{k}={yaml.safe_dump(v).splitlines()[0]}" for k, v in added.items())
        print(
            f"{label}: this project predates the questions {', '.join(added)}; keeping "
            f"{kept} (to opt in: copier update --data KEY=VALUE)"
        )
    else:
        print(f"{label}: answers already present, nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
