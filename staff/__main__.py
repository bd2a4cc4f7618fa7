"""Course staff's command: `python -m staff SUBCOMMAND --help` for each.

A term, in order: roster or provision (a project per student; provision also pushes each to
the git host), fleet (roll a template release out to every project), collect (each
submission at the deadline), check (sandboxed, against a rubric), report (CSV, JSON, HTML).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "roster": "generate a project per student of a CSV",
    "provision": "generate each student's project and push it to their repository",
    "fleet": "update every project to a template release (copier update)",
    "collect": "clone or fetch each submission, at a deadline or tag",
    "check": "check each submission in a sandbox against a rubric",
    "report": "CSV, JSON and an HTML page from check's folders (shards merged)",
}


def usage() -> str:
    """The subcommands, one line each."""
    lines = [f"  {name:<10} {what}" for name, what in COMMANDS.items()]
    return "usage: python -m staff {" + ",".join(COMMANDS) + "} ...\n\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the subcommand's module; its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"{(__doc__ or '').strip()}\n\n{usage()}")
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"python -m staff: unknown command {args[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"staff.{args[0]}")
    status: int = module.main(args[1:])
    return status


if __name__ == "__main__":
    sys.exit(main())
