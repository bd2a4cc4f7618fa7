"""Staff bench: how many submissions `python -m staff check` grades per minute on this machine.

    .venv/bin/python -m bench.staff_check [--students 20] [--jobs 2] [--lint]

One small project (uv, no example, no framework: numpy, pandas, matplotlib, pytest, ruff, mypy)
is generated, locked and its packages cached once (the warm shared cache staff keep); N copies
of it are students' repositories (bare, file:// URLs). Timed: `collect` of the N, then `check`
of the N in bubblewrap's sandbox, --jobs at a time: environment from the lock (offline, from
the cache), doctor, tests, and `make lint` (ruff and mypy) with --lint. Prints the figures and
what a class of 300 would take on one machine like this one and on 10 of them (shards).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devsupport import exit_on_sigterm

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the dev venv: copier, uv
ANSWERS = [
    "example=none",
    "ml_framework=none",
    "ci=none",
    "dockerfile=false",
    "project_name=Digits",
]


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; its output; SystemExit with the output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and "staff" not in cmd):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    """Set up, time collect and check, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--lint", action="store_true", help="include `make lint` (mypy)")
    args = parser.parse_args(argv)
    exit_on_sigterm()  # a killed bench stops what it started
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT), "UV_PYTHON_DOWNLOADS": "never"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="staff-bench-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "project"
        data = [a for answer in [*ANSWERS, "create_env=false"] for a in ("-d", answer)]
        run(
            [str(BIN / "copier"), "copy", "--trust", "--defaults", *data, str(ROOT), str(project)],
            env=env,
        )
        cache = tmp / "uv-cache"
        run(
            [str(BIN / "uv"), "sync", "--quiet"],
            cwd=project,
            env={**env, "UV_CACHE_DIR": str(cache)},
        )
        shutil.rmtree(project / ".venv")
        identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.org"]
        run(["git", *identity, "add", "uv.lock"], cwd=project)
        run(["git", *identity, "commit", "-qm", "lock"], cwd=project)
        ids = [f"s{i:03d}" for i in range(1, args.students + 1)]
        for sid in ids:
            run(
                [
                    "git",
                    "clone",
                    "--quiet",
                    "--bare",
                    str(project),
                    str(tmp / "server" / f"{sid}.git"),
                ]
            )
        roster = tmp / "roster.csv"
        roster.write_text("id\n" + "\n".join(ids) + "\n", encoding="utf-8")
        rubric = tmp / "rubric.yml"
        rubric.write_text(f"builtin: {{lint: {1 if args.lint else 0}}}\n", encoding="utf-8")
        staff = [sys.executable, "-m", "staff"]
        started = time.monotonic()
        run([*staff, "collect", str(roster), "--remote", f"file://{tmp}/server/{{id}}.git",
             "--out", str(tmp / "submissions"), "--jobs", str(args.jobs)], env=env)  # fmt: skip
        collect_s = time.monotonic() - started
        started = time.monotonic()
        out = run([*staff, "check", str(tmp / "submissions"), "--rubric", str(rubric), "--cache",
                   str(cache), "--out", str(tmp / "checks"), "--jobs", str(args.jobs)], env=env)  # fmt: skip
        check_s = time.monotonic() - started
        print(out[-1500:])
    per_min = args.students / (check_s / 60)
    class_min = 300 / per_min
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"""
| staff bench ({os.cpu_count()} CPUs, load {load}) | figure |
|---|---|
| collect {args.students} repositories | {collect_s:.1f} s |
| check {args.students} submissions, {args.jobs} at a time{" (with make lint)" if args.lint else ""} | {check_s:.1f} s |
| submissions per minute | {per_min:.1f} |
| a class of 300 on one such machine | {class_min:.0f} min |
| a class of 300 on 10 such machines (--shard I/10) | {class_min / 10:.0f} min |""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
