"""Collect every student's submission from the git host into a staff folder.

    python -m staff collect roster.csv --remote 'ssh://git@git.example.edu/ml-2027/{id}.git' \\
        --deadline 2027-01-15T23:59+01:00 --out submissions

Per student: clone the repository into OUT/ID (or fetch into an earlier clone), then take the
last commit of --branch (first-parent history) whose commit date is at or before --deadline,
or the commit --tag names, and check it out (detached). The report records the commit id, its
date, how many commits came after it (late work: present, not graded) and how many the student
made since the provisioned first commit. Commit dates are written by the student's machine:
run collect at the deadline (e.g. from cron) so that what is fetched is what had been pushed.
A deadline without a time zone is local time. Statuses:
  collected      a commit to check (OUT/ID is at it)
  no-submission  no commit at or before the deadline (or no such tag, or an empty repository)
  failed         git could not clone or fetch (its message)
Report: collect-report.json and .csv in --out (or --report); git's output in collect-logs/.
Exit status: 0 every student collected, 1 some were not, 2 nothing was attempted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from staff import batch, remote, roster

LOG_DIR = "collect-logs"
REPORT = "collect-report"


class CollectError(batch.BatchError):
    """Unusable arguments: nothing is collected."""


@dataclass
class Result:
    """One student's submission: the commit to check, its date, and what came after it."""

    id: str
    status: str  # collected | no-submission | failed
    remote: str  # redacted
    path: str = ""
    commit: str = ""
    date: str = ""  # the commit's committer date, ISO 8601
    later_commits: int = 0  # on the branch after the collected commit
    student_commits: int = 0  # since the provisioned first commit
    base: str = ""  # the first (provisioned) commit: "files that must not change" compare to it
    detail: str = ""
    seconds: float = 0.0
    log: str = ""


def parse_deadline(text: str | None) -> datetime | None:
    """--deadline as an aware datetime (local time when it names no zone)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CollectError(
            f"--deadline {text!r} is not an ISO date and time, e.g. 2027-01-15T23:59+01:00"
        ) from None
    return when if when.tzinfo else when.astimezone()


def collect_one(
    student: str,
    template: str,
    out: Path,
    branch: str,
    deadline: datetime | None,
    tag: str | None,
    timeout: float = remote.GIT_TIMEOUT,
) -> Result:
    """Clone or fetch one repository and check out the commit to grade."""
    started = time.monotonic()
    url = remote.url_for(template, student)
    dst = out / student
    res = Result(student, "failed", remote.redact(url), str(dst))
    log = out / LOG_DIR / f"{student}.log"
    res.log = str(log)
    lines: list[str] = []

    def step(*args: str, cwd: Path | None = dst) -> tuple[int, str]:
        code, output = remote.git(list(args), cwd, timeout)
        lines.append(f"$ git {remote.redact(' '.join(args))}\n{output}[exit {code}]\n")
        return code, output

    try:
        if not (dst / ".git").is_dir():
            code, output = step("clone", "--quiet", "--no-checkout", url, str(dst), cwd=None)
        else:
            step("remote", "set-url", "origin", url)
            code, output = step("fetch", "--quiet", "--prune", "--tags", "--force", "origin")
        if code != 0:
            res.detail = (
                f"cannot {'fetch' if dst.exists() else 'clone'}: {remote.last_line(output)}"
            )
            return res
        tip = f"refs/remotes/origin/{branch}"
        code, output = step("log", "--first-parent", "--format=%H %ct", tip)
        history = [line.split() for line in output.splitlines() if line.strip()]
        if code != 0 or not history:
            res.status, res.detail = "no-submission", f"no branch {branch} (empty repository?)"
            return res
        if tag:
            code, output = step("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
            chosen = output.strip() if code == 0 else ""
            if not chosen:
                res.status, res.detail = "no-submission", f"no tag {tag}"
                return res
        else:
            limit = deadline.timestamp() if deadline else float("inf")
            eligible = [sha for sha, ct in history if int(ct) <= limit]
            if not eligible:
                res.status, res.detail = "no-submission", "no commit at or before the deadline"
                return res
            chosen = eligible[0]
        code, output = step("checkout", "--quiet", "--force", "--detach", chosen)
        if code != 0:
            res.detail = f"cannot check out {chosen}: {remote.last_line(output)}"
            return res
        step("clean", "-ffdxq")
        res.commit = chosen
        _, output = step("show", "-s", "--format=%ct", chosen)
        stamp = datetime.fromtimestamp(int(output.strip() or 0), timezone.utc)
        res.date = stamp.astimezone().isoformat(timespec="seconds")
        res.base = history[-1][0]
        _, later = step("rev-list", "--count", f"{chosen}..{tip}")
        _, own = step("rev-list", "--count", f"{res.base}..{chosen}")
        res.later_commits, res.student_commits = int(later.strip() or 0), int(own.strip() or 0)
        res.status = "collected"
        if res.later_commits:
            res.detail = f"{res.later_commits} later commit(s) on {branch}: not graded"
        return res
    finally:
        log.write_text("".join(lines), encoding="utf-8")
        res.seconds = round(time.monotonic() - started, 1)


def summary(results: Sequence[Result]) -> str:
    """Counts per status, late work, and each student without a submission."""
    counts = {
        s: sum(r.status == s for r in results) for s in ("collected", "no-submission", "failed")
    }
    late = [r.id for r in results if r.later_commits]
    lines = [
        f"{len(results)} students: {counts['collected']} collected, {counts['no-submission']} "
        f"without a submission, {counts['failed']} failed"
    ]
    if late:
        lines.append(f"  later commits, not graded: {', '.join(late)}")
    lines += [f"  {r.id}: {r.status}: {r.detail}" for r in results if r.status != "collected"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The roster, --remote, --deadline or --tag, --out, batch's options."""
    parser = batch.parser("python -m staff collect", __doc__ or "")
    parser.add_argument("roster", type=Path, help="the class's CSV (its `id` column)")
    parser.add_argument("--remote", required=True, help="repository URL with {id}, as provision")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--deadline", help="ISO date and time, e.g. 2027-01-15T23:59+01:00")
    when.add_argument("--tag", help="take the commit this tag names instead (e.g. submission)")
    parser.add_argument("--branch", default="main", help="branch to collect (default: main)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("submissions"),
        help="staff folder (default: ./submissions)",
    )
    batch.add_batch_options(
        parser, doing="collected", timeout=remote.GIT_TIMEOUT, per="git command",
        report=f"default: OUT/{REPORT}",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> tuple[list[Result], Path]:
    """Collect every row's repository, --jobs at a time; the results by id."""
    template = remote.check_template(args.remote)
    deadline = parse_deadline(args.deadline)
    if args.jobs < 1:
        raise CollectError("--jobs must be 1 or more")
    rows = roster.read_roster(args.roster, None)
    problems = roster.id_problems(rows)
    if problems:
        line, problem = next(iter(problems.items()))
        raise CollectError(f"{args.roster} line {line}: {problem}")
    out = args.out.resolve()
    (out / LOG_DIR).mkdir(parents=True, exist_ok=True)
    progress = batch.Progress(len(rows), bad_label="not collected")

    def done(res: Result) -> None:
        note = res.status if res.status != "failed" else f"failed: {res.detail}"
        note += f" ({res.commit[:10]})" if res.commit else ""
        progress.report(res.id, note, res.seconds, bad=res.status != "collected")

    def crashed(row: roster.Row, reason: str) -> Result:
        return Result(
            row.id, "failed", remote.redact(remote.url_for(template, row.id)), detail=reason
        )

    try:
        results = batch.run_all(
            rows,
            lambda row: collect_one(
                row.id, template, out, args.branch, deadline, args.tag, args.timeout
            ),
            jobs=args.jobs,
            crashed=crashed,
            done=done,
        )
    finally:
        progress.close()
    return sorted(results, key=lambda r: r.id), args.report or out / REPORT


def main(argv: Sequence[str] | None = None) -> int:
    """collect's entry point; the exit status."""
    args = build_parser().parse_args(argv)
    return batch.finish(
        "collect", Result, lambda: run(args), summary, lambda r: r.status != "collected"
    )


if __name__ == "__main__":
    sys.exit(main())
