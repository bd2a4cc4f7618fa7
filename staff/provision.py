"""Give every student of a roster a repository: generate each project and push it to a git host.

    python -m staff provision roster.csv --preset presets/mnist-course.yml --out projects \\
        --remote 'ssh://git@git.example.edu/ml-2027/{id}.git'

Generation is roster's (same CSV, options and report, projects/roster-report.json); then each
project's first commit is pushed to the URL --remote makes of its id, on --branch (main), with a
plain `git push`: never forced. Per student the result is
  pushed   the remote had no such branch: the project's commit is now there
  exists   the remote already has the branch (an earlier run, or the student's own commits):
           nothing is pushed, so a second run changes nothing
  failed   generation failed, or git could not reach or write the repository (its message)
Any host that accepts a push works: GitLab, Gitea, Forgejo, a bare repository over SSH. The
repositories must exist, or the host must create them on push (GitLab does). Credentials come
from git itself (your SSH agent or key, or a credential helper): a --remote with a password or
token in it is refused, and URLs in the report and log never show one. git never prompts.
Each project's `origin` is its repository (for pulls and pushes around `python -m staff fleet`).
Report: provision-report.json and .csv in --out (or --report), git's output per student in
provision-logs/ID.log. Exit status: 0 every student pushed or existing, 1 some failed, 2
nothing was attempted (bad arguments, roster or remote).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from staff import batch, remote, roster

LOG_DIR = batch.PROVISION_LOGS


@dataclass
class Result:
    """One student's repository: whether it was pushed, and the commit on the remote."""

    id: str
    line: int
    status: str  # pushed | exists | failed
    remote: str  # redacted
    commit: str = ""
    generated: str = ""  # roster's status for the project: ok | exists | failed | env_failed
    detail: str = ""
    seconds: float = 0.0
    log: str = ""


def push(gen: roster.Result, template: str, branch: str, logs: Path) -> Result:
    """Push one generated project to its remote unless that branch is there already."""
    started = time.monotonic()
    url = remote.url_for(template, gen.id)
    res = Result(gen.id, gen.line, "failed", remote.redact(url), generated=gen.status)
    log = logs / f"{gen.id}.log"
    res.log = str(log)
    lines: list[str] = []

    def step(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
        code, out = remote.git(args, cwd)
        lines.append(f"$ git {remote.redact(' '.join(args))}\n{out}[exit {code}]\n")
        return code, out

    try:
        if gen.status not in ("ok", "exists"):
            res.detail = f"not generated: {gen.error}"
            return res
        project = Path(gen.path)
        code, out = step(["rev-parse", "HEAD"], project)
        if code != 0:
            res.detail = f"{project} has no commit (git_init is off?): {remote.last_line(out)}"
            return res
        res.commit = out.strip()
        top = remote.git(["rev-parse", "--show-toplevel"], project)[1].strip()
        if Path(top).resolve() != project.resolve():  # it would push that repository instead
            res.detail = (
                f"{project} is inside the git repository {top}, not one of its own: nothing pushed"
            )
            return res
        if remote.git(["remote", "get-url", "origin"], project)[0] != 0:
            step(["remote", "add", "origin", url], project)  # for fleet's pull and push later
        code, out = step(["ls-remote", "--heads", url, f"refs/heads/{branch}"])
        if code != 0:
            res.detail = f"cannot reach the repository: {remote.last_line(out)}"
            return res
        if out.strip():
            res.status, res.commit = "exists", out.split()[0]
            res.detail = f"{branch} is already there: nothing pushed"
            return res
        code, out = step(["push", "--quiet", url, f"HEAD:refs/heads/{branch}"], project)
        if code != 0:
            res.detail = f"push refused: {remote.last_line(out)}"
            return res
        res.status = "pushed"
        return res
    finally:
        log.write_text("".join(lines), encoding="utf-8")
        res.seconds = round(time.monotonic() - started, 1)


def enclosing_repository(folder: Path) -> str:
    """The git work tree `folder` (or its nearest existing parent) is in; "" when none."""
    existing = next(p for p in [folder.resolve(), *folder.resolve().parents] if p.is_dir())
    code, out = remote.git(["rev-parse", "--show-toplevel"], existing)
    return out.strip() if code == 0 else ""


def summary(results: Sequence[Result]) -> str:
    """Counts per status, then each failure with its reason."""
    counts = {s: sum(r.status == s for r in results) for s in ("pushed", "exists", "failed")}
    lines = [
        f"{len(results)} students: {counts['pushed']} pushed, {counts['exists']} already on "
        f"the remote, {counts['failed']} failed"
    ]
    lines += [f"  {r.id}: {r.detail}  (log: {r.log})" for r in results if r.status == "failed"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """roster's options, and where to push."""
    parser = roster.build_parser("python -m staff provision", __doc__ or "")
    parser.add_argument(
        "--remote",
        required=True,
        help="repository URL with {id}, e.g. 'ssh://git@git.example.edu/ml-2027/{id}.git'",
    )
    parser.add_argument("--branch", default="main", help="branch to create (default: main)")
    return parser


def run(args: argparse.Namespace) -> tuple[list[Result], Path]:
    """Generate (roster), then push every project, --jobs at a time."""
    template = remote.check_template(args.remote)
    outer = enclosing_repository(args.out)
    if outer:
        raise batch.BatchError(
            f"--out {args.out} is inside the git repository {outer}: a project made there gets "
            "no repository of its own, and pushing it would push that one. Give --out a folder "
            "outside any git repository, e.g. --out ~/ml-2027/projects"
        )
    report = args.report
    args.report = None
    generated, roster_base = roster.run(args, forced={"git_init": True})
    fields = list(roster.Result.__dataclass_fields__)
    batch.write_report([vars(g) for g in generated], fields, roster_base)
    out = args.out.resolve()
    logs = out / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    progress = batch.Progress(len(generated))

    def done(res: Result) -> None:
        progress.report(res.id, res.status + (f": {res.detail}" if res.status == "failed" else ""),
                        res.seconds, bad=res.status == "failed")  # fmt: skip

    def crashed(gen: roster.Result, reason: str) -> Result:
        return Result(gen.id, gen.line, "failed", remote.redact(remote.url_for(template, gen.id)),
                      generated=gen.status, detail=reason)  # fmt: skip

    try:
        results = batch.run_all(
            generated,
            lambda g: push(g, template, args.branch, logs),
            jobs=args.jobs,
            crashed=crashed,
            done=done,
        )
    finally:
        progress.close()
    return sorted(results, key=lambda r: r.line), report or out / "provision-report"


def main(argv: Sequence[str] | None = None) -> int:
    """provision's entry point; the exit status."""
    args = build_parser().parse_args(argv)
    return batch.finish(
        "provision", Result, lambda: run(args), summary, lambda r: r.status == "failed"
    )


if __name__ == "__main__":
    sys.exit(main())
