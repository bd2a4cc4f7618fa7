"""Generate one project per student of a roster (CSV), in parallel, with copier.

    python staff/roster.py roster.csv --preset presets/mnist-course.yml --out projects \\
        --template gh:copier-mlops/copier-mlops --vcs-ref v0.1.0

The CSV needs a column `id` (the project's folder name: student id or login). Optional columns:
`name` (-> author_name), `email` (-> author_email), and any question of copier.yml by its name
(e.g. project_name, python_version) for a per-student answer; empty cells keep the preset's answer.
Answers: template defaults < --preset < --data < the row. Each project is a separate `copier copy`
(so one failure never stops the others), its output goes to OUT/roster-logs/ID.log, and the report
(OUT/roster-report.json and .csv) lists every row with its status and the reason of any failure.
Environment creation is off unless --create-env: a class of environments is a lot of downloads,
and each student creates theirs with `make env`. Needs only the Python that has copier installed.
Exit status: 0 all generated, 1 some rows failed, 2 nothing was attempted (bad arguments or CSV).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml  # copier's own dependency

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_ROOT / "template" / "tools"))  # the environment tool: `envtool`
from envtool.base import RESULT_FILE  # noqa: E402

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
COLUMN_ALIASES = {"name": "author_name", "email": "author_email"}
LOG_DIR = "roster-logs"


class RosterError(Exception):
    """A problem with the arguments or the CSV as a whole: nothing is generated."""


@dataclass
class Row:
    line: int  # line number in the CSV (header = 1), for messages staff can find
    id: str
    answers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    id: str
    line: int
    status: str  # ok | env_failed (project in place, environment not created) | failed
    path: str
    seconds: float
    error: str = ""
    log: str = ""


# ------------------------------------------------------------------------------ inputs
def question_names(template: str) -> set[str] | None:
    """Questions of a local template (None for a remote one: columns are then not checked)."""
    config = Path(template).expanduser() / "copier.yml"
    if not config.is_file():
        return None
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    return {
        k
        for k, v in data.items()
        if not k.startswith("_") and not (isinstance(v, dict) and v.get("when") is False)
    }


def parse_data(items: Iterable[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RosterError(f"--data '{item}' is not KEY=VALUE (e.g. --data python_version=3.12)")
        data[key] = value
    return data


def load_preset(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise RosterError(
            f"preset {path} not found (the presets are in {TEMPLATE_ROOT / 'presets'})"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise RosterError(f"preset {path} is not a YAML mapping of question: answer")
    return data


def read_roster(path: Path, questions: set[str] | None) -> list[Row]:
    """Parse the CSV; refuse it as a whole only when its header is unusable."""
    if not path.is_file():
        raise RosterError(f"roster {path} not found")
    # utf-8-sig: spreadsheets often write a byte-order mark before the header.
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "id" not in header:
            raise RosterError(
                f"{path}: no 'id' column (found: {', '.join(header) or 'nothing'}); the first line "
                "must name the columns, e.g. id,name,email"
            )
        known = {"id", *COLUMN_ALIASES, *(questions or ())}
        unknown = [h for h in header if questions is not None and h not in known]
        if unknown:
            raise RosterError(
                f"{path}: column(s) {', '.join(unknown)} are neither id, name, email nor a question "
                f"of the template ({', '.join(sorted(questions or ()))}): rename or delete them"
            )
        rows = []
        end = reader.line_num  # a quoted cell may span lines: report the line a row starts on
        for cells in reader:
            start, end = end + 1, reader.line_num
            # Short rows (trailing cells left out by some editors) simply lack those answers.
            values = {k: v.strip() for k, v in zip(header, cells, strict=False) if k}
            if not any(values.values()):
                continue  # blank line
            answers = {
                COLUMN_ALIASES.get(k, k): v for k, v in values.items() if k != "id" and v != ""
            }
            rows.append(Row(line=start, id=values.get("id", ""), answers=answers))
    return rows


def id_problems(rows: Sequence[Row]) -> dict[int, str]:
    """Rows whose id cannot name a folder, or repeats an earlier row's (case-insensitive)."""
    problems: dict[int, str] = {}
    seen: dict[str, int] = {}
    for row in rows:
        if not ID_PATTERN.match(row.id):
            problems[row.line] = (
                f"id '{row.id}' cannot be a folder name: use letters, digits, '.', '_' or '-' "
                "(at most 100, starting with a letter or digit)"
            )
        elif row.id.lower() in seen:
            problems[row.line] = f"id '{row.id}' is already used on line {seen[row.id.lower()]}"
        else:
            seen[row.id.lower()] = row.line
    return problems


# ------------------------------------------------------------------------------ one project
def copier_command(template: str, vcs_ref: str | None, data_file: Path, dst: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "copier",
        "copy",
        "--trust",
        "--defaults",
        "--data-file",
        str(data_file),
    ]
    if vcs_ref:
        cmd += ["--vcs-ref", vcs_ref]
    return [*cmd, template, str(dst)]


def failure_reason(output: str) -> str:
    """The line of copier's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("Validation error for question", "Error:", "error:"):
        hits = [line for line in lines if marker in line]
        if hits:
            return hits[-1].removeprefix("ValueError: ")
    return lines[-1] if lines else "copier printed nothing"


def generate(
    row: Row,
    *,
    template: str,
    vcs_ref: str | None,
    answers: dict[str, Any],
    out: Path,
    timeout: float,
) -> Result:
    started = time.monotonic()
    dst = out / row.id

    def result(status: str, error: str = "", log: str = "") -> Result:
        seconds = round(time.monotonic() - started, 1)
        return Result(row.id, row.line, status, str(dst), seconds, error, log)

    if dst.exists():
        return result("failed", f"{dst} already exists: not overwritten (delete it or use --out)")
    logs = out / LOG_DIR
    data_file = logs / f"{row.id}.answers.yml"
    log = logs / f"{row.id}.log"
    # One data file per project: exact types, no quoting, and staff can see what each one got.
    data_file.write_text(
        yaml.safe_dump({**answers, **row.answers}, sort_keys=True, allow_unicode=True),
        encoding="utf-8",
    )
    cmd = copier_command(template, vcs_ref, data_file, dst)
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,  # a question nobody answered must fail, not wait
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {timeout:.0f}s"
        code = -1
    log.write_text(f"$ {' '.join(cmd)}\n{output}", encoding="utf-8")
    if code != 0:
        return result("failed", failure_reason(output), str(log))
    env = env_result(dst)
    if env.get("status") == "failed":
        reason = f"environment step '{env.get('failed_step')}' failed: {env.get('reason')}"
        return result(
            "env_failed", reason + (f" (fix: {env['fix']})" if env.get("fix") else ""), str(log)
        )
    return result("ok", log=str(log))


def env_result(project: Path) -> dict[str, Any]:
    """The environment tool's machine-readable result ({} when the set-up did not run)."""
    try:
        data: dict[str, Any] = json.loads((project / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


# ------------------------------------------------------------------------------ progress
class Progress:
    """A one-line bar on a terminal; one line per project otherwise (CI logs, files)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream, self.done, self.failed = total, stream, 0, 0
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def bar(self) -> str:
        width = 30
        filled = width * self.done // max(self.total, 1)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  "
            f"failed {self.failed}  {time.monotonic() - self.started:.0f}s"
        )

    def update(self, res: Result) -> None:
        self.done += 1
        self.failed += res.status != "ok"
        note = "ok" if res.status == "ok" else f"{res.status.upper()}: {res.error}"
        line = f"{res.id}: {note} ({res.seconds:.1f}s)"
        if self.tty:
            self.stream.write(f"\r\033[K{line}\n{self.bar()}")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------------------ report
def write_report(results: Sequence[Result], path: Path) -> tuple[Path, Path]:
    rows = [asdict(r) for r in sorted(results, key=lambda r: r.line)]
    json_path, csv_path = path.with_suffix(".json"), path.with_suffix(".csv")
    json_path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Result.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


def summary(results: Sequence[Result], report: tuple[Path, Path]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "env_failed", "failed")}
    lines = [
        f"{len(results)} projects: {counts['ok']} ok, {counts['env_failed']} without environment, "
        f"{counts['failed']} failed"
    ]
    for r in sorted(results, key=lambda r: r.line):
        if r.status != "ok":
            lines.append(f"  line {r.line}, id {r.id}: {r.status}: {r.error}")
            if r.log:
                lines.append(f"    log: {r.log}")
    if counts["failed"]:
        lines.append(
            "Fix those rows (or delete the rest) and run again: existing projects are kept."
        )
    lines.append(f"Report: {report[0]} and {report[1]}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roster",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("roster", type=Path, help="CSV with an 'id' column (see below)")
    parser.add_argument("--preset", type=Path, help="answers file, e.g. presets/mnist-course.yml")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("projects"),
        help="folder for the projects (default: ./projects)",
    )
    parser.add_argument(
        "--template",
        default=str(TEMPLATE_ROOT),
        help="template path or URL (default: this repository)",
    )
    parser.add_argument(
        "--vcs-ref",
        help="template release to use, e.g. v0.1.0 (default: copier's choice, the newest tag)",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="answer for every project (repeatable)",
    )
    parser.add_argument(
        "--create-env",
        action="store_true",
        help="also create each environment (off by default: slow, many downloads)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="projects generated at once (default: min(4, CPUs))",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds one project may take (default: 1800)"
    )
    parser.add_argument(
        "--report", type=Path, help="report path without suffix (default: OUT/roster-report)"
    )
    return parser


def run(args: argparse.Namespace) -> list[Result]:
    if importlib.util.find_spec("copier") is None:
        raise RosterError(
            f"copier is not installed for {sys.executable}: run this script with the Python that "
            "has copier (e.g. ~/.copier-mlops/bin/python staff/roster.py ...)"
        )
    if args.jobs < 1:
        raise RosterError("--jobs must be 1 or more")
    local = Path(args.template).expanduser()
    template = str(local.resolve()) if local.exists() else args.template  # else a URL
    # A remote template: check names against this checkout's copier.yml (the same template),
    # so a misspelt column fails here instead of being ignored by copier.
    questions = question_names(template) or question_names(str(TEMPLATE_ROOT))
    answers = {**load_preset(args.preset), **parse_data(args.data)}
    answers["create_env"] = bool(args.create_env)
    if questions is not None:
        unknown = sorted(k for k in answers if k not in questions)
        if unknown:
            raise RosterError(
                f"{', '.join(unknown)}: not question(s) of {template}; check the spelling"
            )
    rows = read_roster(args.roster, questions)
    if not rows:
        raise RosterError(f"{args.roster} has a header but no rows")
    out = args.out.resolve()
    (out / LOG_DIR).mkdir(parents=True, exist_ok=True)
    progress = Progress(len(rows))
    results: list[Result] = []
    problems = id_problems(rows)
    for row in rows:
        if row.line in problems:
            results.append(Result(row.id, row.line, "failed", "", 0.0, problems[row.line]))
            progress.update(results[-1])
    # Threads suffice: each project is its own copier process (copier's API changes the
    # process's working directory, so it must not run in several threads of one process).
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    futures = [
        pool.submit(
            generate,
            row,
            template=template,
            vcs_ref=args.vcs_ref,
            answers=answers,
            out=out,
            timeout=args.timeout,
        )
        for row in rows
        if row.line not in problems
    ]
    try:
        for future in as_completed(futures):
            results.append(future.result())
            progress.update(results[-1])
    except KeyboardInterrupt:
        # Ctrl-C reached the running copier processes too; report what has finished.
        print("\ninterrupted: the report lists only the projects that finished", file=sys.stderr)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        results = run(args)
    except RosterError as exc:
        print(f"roster: {exc}", file=sys.stderr)
        return 2
    report = write_report(results, args.report or args.out.resolve() / "roster-report")
    print(summary(results, report))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
