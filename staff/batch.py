"""The batch skeleton roster.py and fleet.py share: options, copier runs, a pool, progress, reports.

A batch runs one copier command per project, `--jobs` at a time; one project's failure, timeout
or unexpected error is that project's result and never stops the others; Ctrl-C stops waiting
and reports what finished. Exit status: 0 all fine, 1 some need a look, 2 nothing was attempted.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

ANSWERS_FILE = ".copier-answers.yml"  # copier.yml's _answers_file
ROSTER_LOGS, FLEET_LOGS = "roster-logs", "fleet-logs"  # copier's output per project
PROVISION_LOGS = "provision-logs"  # git's output per student
INTERRUPTED = "\ninterrupted: the report lists only the projects that finished"

Item = TypeVar("Item")
Res = TypeVar("Res", bound="Outcome")


class BatchError(Exception):
    """A problem with the arguments or the input as a whole: nothing is attempted (exit 2)."""


class Outcome(Protocol):
    """What every per-project result has (roster's and fleet's Result dataclasses)."""

    id: str
    status: str
    seconds: float


# ------------------------------------------------------------------------------ options
def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose help is the script's docstring: first paragraph, then the rest as epilog."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_batch_options(
    parser: argparse.ArgumentParser, *, doing: str, timeout: float, per: str, report: str
) -> None:
    """--jobs, --timeout and --report, worded for what the script does to each project."""
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help=f"projects {doing} at once (default: min(4, CPUs))",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds one {per} may take (default: {timeout:.0f})",
    )
    parser.add_argument("--report", type=Path, help=f"report path without suffix ({report})")


def check_setup(script: str, jobs: int) -> None:
    """Refuse to start without copier (the scripts run it as `python -m copier`) or workers."""
    if importlib.util.find_spec("copier") is None:
        raise BatchError(
            f"copier is not installed for {sys.executable}: run this script with the Python that "
            f"has copier (e.g. ~/.copier-mlops/bin/python -m staff {script} ...)"
        )
    if jobs < 1:
        raise BatchError("--jobs must be 1 or more")


# ------------------------------------------------------------------------------ copier runs
def run_command(
    cmd: Sequence[str], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """(exit status, stdout + stderr) of `cmd`; a timeout is status -1 with what it printed."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,  # a question nobody answered must fail, not wait
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return -1, f"{partial_output(exc)}\ntimed out after {timeout:.0f}s"
    return proc.returncode, proc.stdout + proc.stderr


def partial_output(exc: subprocess.TimeoutExpired) -> str:
    """What a timed-out command printed (the exception holds bytes even with text=True)."""
    parts = (
        p.decode("utf-8", "replace") if isinstance(p, bytes) else p
        for p in (exc.stdout, exc.stderr)
    )
    return "".join(p or "" for p in parts)


def failure_reason(output: str) -> str:
    """The line of copier's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("Validation error for question", "is refused:", "Error:", "error:"):
        hits = [line for line in lines if marker in line]
        if hits:
            return hits[-1].removeprefix("ValueError: ")
    return lines[-1] if lines else "copier printed nothing"


# ------------------------------------------------------------------------------ progress
class Progress:
    """A one-line bar on a terminal; one line per project otherwise (CI logs, files)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, bad_label: str = "failed") -> None:
        """Count `total` projects on `stream`; the bar is drawn only when it is a terminal."""
        self.total, self.stream, self.done, self.failed = total, stream, 0, 0
        self.bad_label = bad_label  # what the bar counts: the projects that need a look
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def bar(self) -> str:
        """The bar line: done/total, how many need a look, and the seconds since the start."""
        width = 30
        filled = width * self.done // max(self.total, 1)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  "
            f"{self.bad_label} {self.failed}  {time.monotonic() - self.started:.0f}s"
        )

    def report(self, name: str, note: str, seconds: float, bad: bool) -> None:
        """Count one finished project and print its line (on a terminal, the bar redrawn below)."""
        self.done += 1
        self.failed += bad
        line = f"{name}: {note} ({seconds:.1f}s)"
        if self.tty:
            self.stream.write(f"\r\033[K{line}\n{self.bar()}")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line on a terminal, so that what follows starts on a new line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------------------ pool
def run_all(
    items: Sequence[Item],
    work: Callable[[Item], Res],
    *,
    jobs: int,
    crashed: Callable[[Item, str], Res],
    done: Callable[[Res], None],
) -> list[Res]:
    """work(item) for every item, `jobs` at a time, in threads: each project is its own copier
    process (copier's API changes the working directory, so it must not run in several threads
    of one process). An unexpected error in one item becomes crashed(item, reason), so the
    others go on and the report is written; each result goes to `done` as it finishes."""
    results: list[Res] = []
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures: dict[Future[Res], Item] = {pool.submit(work, item): item for item in items}
    try:
        for future in as_completed(futures):
            try:
                res = future.result()
            except Exception as exc:  # a bug or an unforeseen state: this project only
                res = crashed(futures[future], f"unexpected {exc.__class__.__name__}: {exc}")
            results.append(res)
            done(res)
    except KeyboardInterrupt:
        # Ctrl-C reached the running copier processes too; report what has finished.
        print(INTERRUPTED, file=sys.stderr)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# ------------------------------------------------------------------------------ report
def write_report(
    rows: Sequence[dict[str, Any]], fields: Sequence[str], path: Path
) -> tuple[Path, Path]:
    """PATH.json (the rows as they are) and PATH.csv (lists joined with '; ')."""
    json_path, csv_path = path.with_suffix(".json"), path.with_suffix(".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return json_path, csv_path


def finish(
    prog: str,
    result_type: type[Res],
    attempt: Callable[[], tuple[list[Res], Path]],
    summary: Callable[[list[Res]], str],
    needs_a_look: Callable[[Res], bool],
) -> int:
    """Run the batch, write its report (results are dataclasses, in report order), print the
    summary and where the report is; the exit status as the module's docstring says."""
    try:
        results, base = attempt()
    except BatchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    fields = [f.name for f in dataclasses.fields(result_type)]  # type: ignore[arg-type]
    rows = [dataclasses.asdict(r) for r in results]  # type: ignore[call-overload]
    json_path, csv_path = write_report(rows, fields, base)
    print(f"{summary(results)}\nReport: {json_path} and {csv_path}")
    return 1 if any(needs_a_look(r) for r in results) else 0
