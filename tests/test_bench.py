"""Smoke test of bench/bench.py in --quick mode: it runs end to end and writes a sane table.

It asserts the shape of the report, never timings (those depend on the machine and its load).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import posix_only

ROOT = Path(__file__).resolve().parents[1]
# ccds's template comes from git: a local mirror when there is one (GitHub is unreachable here).
CCDS_MIRROR = Path("/work/.mirror/drivendataorg+cookiecutter-data-science/repo")


@pytest.mark.slow
@posix_only("bench/bench.py (sh -c, venvs' bin/, the load average)")
def test_quick_bench_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    cmd = [sys.executable, "-m", "bench.bench", "--quick", "--out", str(out)]
    template = os.environ.get("COPIER_MLOPS_CCDS_TEMPLATE") or (
        str(CCDS_MIRROR) if CCDS_MIRROR.exists() else ""
    )
    # Without a copy of ccds's template (a fresh machine here: GitHub is unreachable and its code
    # may not be vendored), the smoke test measures copier-mlops alone and checks that part.
    cmd += ["--ccds-template", template] if template else ["--no-ccds"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    doc = out.read_text(encoding="utf-8")
    assert f"{os.cpu_count()} CPUs" in doc
    assert re.search(r"load average at start \(1, 5, 15 min\): [\d.]+, [\d.]+, [\d.]+", doc)
    for tool in ("copier", "uv", "poetry", "ccds")[: 4 if template else 3]:
        assert re.search(rf"^- {tool}: \S", doc, re.M), tool
    rows = {}
    for line in doc.splitlines():
        m = re.match(
            r"\| `([\w.+-]+)` \|[^|]*\| (\d+) \| ([\d.]+) s \| ([\d.]+) s \| ([\d.]+) s \|", line
        )
        if m:
            rows[m.group(1)] = (int(m.group(2)), *map(float, m.group(3, 4, 5)))
    expected = {"render.copier-floor", "render.ours", "uv.floor", "uv.floor+import", "uv.ours"}
    expected |= {"render.ccds", "uv.ccds"} if template else set()
    # Experiment tracking's cost: with and without MLflow, cold and warm, the imports (--quick:
    # copier-mlops' side only; ccds's is the environments section's ccds_env again).
    tracking = {f"tracking.ours.{t}{kind}" for t in ("none", "mlflow") for kind in ("", ".cold")}
    tracking |= {f"tracking.import.{i}" for i in ("python", "stack", "stack+mlflow", "mlflow")}
    tracking |= {"tracking.ours.none.sanity", "tracking.ours.mlflow.sanity"}
    # The student's loop, `make train DATASET=digits` with and without MLflow: wall and CPU time
    tracking |= {f"tracking.train.{t}{kind}" for t in ("none", "mlflow") for kind in ("", ".cpu")}
    expected |= tracking
    assert not any(key.startswith("tracking.ccds") for key in rows), doc
    assert expected <= rows.keys(), doc
    for key, (runs, median, low, high) in rows.items():
        assert runs == 1 and 0 < low <= median <= high, (key, rows[key])
    # Every target that quick mode measures is reported as met or missed, with its numbers.
    if template:
        assert re.search(
            r"render no slower than ccds: [\d.]+ s vs [\d.]+ s .*: (met|missed by)", doc
        )
    assert re.search(r"within 1\.5 s of `uv sync`'s floor: [+-][\d.]+ s: (met|missed by)", doc)
    assert re.search(
        r"within 1\.5 s of `uv sync` \+ the first import: [+-][\d.]+ s: (met|missed by)", doc
    )
    if template:  # ahead of ccds given the same packages, warm and cold, met or missed by how much
        for warmth in ("warm", "cold"):
            assert re.search(rf"uv, {warmth}: at most 0\.85x ccds given the same packages: [\d.]+ s "
                             r"vs [\d.]+ s \([\d.]+x\): (met|missed by [\d.]+ s)", doc), warmth  # fmt: skip
    # The uv row step by step, each side: a figure beside the table, and the steps add up to the
    # row (within 10 %: each is a median of its own).
    figure = out.with_name("benchmarks-steps.png")
    assert figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and figure.stat().st_size > 10_000
    assert "](benchmarks-steps.png)" in doc
    steps = {}
    for line in doc.splitlines():
        m = re.match(r"\| uv, (copier-mlops|ccds) \|((?: [\d.]+ \|){10})$", line)
        if m:
            steps[m.group(1)] = [float(c) for c in m.group(2).strip(" |").split(" | ")]
    assert set(steps) == ({"copier-mlops", "ccds"} if template else {"copier-mlops"}), doc
    for side, cells in steps.items():
        *parts, total, row = cells
        render, _, install, _, sanity, *_ = parts
        assert render > 0 and install > 0 and sanity > 0, (side, cells)
        assert abs(sum(parts) - total) < 0.02 and abs(total - row) <= 0.1 * row, (side, cells)
    assert "| `uv.ours` |" in proc.stdout  # the table is printed too
    # The tracking rows are a block of their own (a later `--only tracking` replaces just it),
    # with the environment sizes in MB and what MLflow costs, as differences of medians.
    block = doc.split("<!-- tracking-bench:start -->", 1)[1].split("<!-- tracking-bench:end -->")[0]
    assert tracking <= set(re.findall(r"^\| `(tracking\.[\w.+-]+)` \|", block, re.M))
    for t in ("none", "mlflow"):
        size = re.search(
            rf"^\| `tracking\.ours\.{t}\.size` \|[^|]*\| 1 \| (\d+) MB \|", block, re.M
        )
        assert size and 100 < int(size.group(1)) < 5000, (t, block)
    assert re.search(r"MLflow's cost, copier-mlops: [+-][\d.]+ s to create the environment", block)
    assert re.search(r"with mlflow [\d.]+ s \([+-][\d.]+ s\)", block)
    for what in ("wall clock", "CPU time"):  # the target: MLflow at most 1.5x none
        assert re.search(rf"student's loop \(`make train DATASET=digits`, warm, {what}\) at most "
                         r"1\.5x without tracking: [\d.]+ s vs [\d.]+ s \([\d.]+x\): (met|missed by "
                         r"[\d.]+ s)", block), what  # fmt: skip
    assert "## Table" not in block and "`tracking." not in doc.split(block)[0]


def test_hook_steps_add_up_to_the_copier_run() -> None:
    """copier's time before and after the tool, the tool's steps and their parts, and its own time
    between steps: each second of the run in exactly one step."""
    from bench.bench import STEPS, hook_steps

    result = {
        "started_at": 100.5,
        "finished_at": 110.0,
        "steps": [
            {"name": "find the tool", "seconds": 0.1},
            {"name": "find Python 3.11", "seconds": 0.2},
            {"name": "create the environment", "seconds": 0.3},
            {"name": "install the project and its dependencies", "seconds": 4.0},
            {"name": "write the lock file", "seconds": 1.0},
            {"name": "sanity import", "seconds": 3.0, "parts": {"pip check": 0.25}},
        ],
    }
    steps = hook_steps(result, began=100.0, ended=111.5)
    assert list(steps) == list(STEPS)
    assert steps["render"] == 0.5 and steps["git"] == 1.5
    assert steps["install"] == 4.0 and steps["lock"] == 1.0 and steps["kernel"] == 0
    assert steps["sanity import"] == 2.75 and steps["pip check"] == 0.25
    assert round(steps["tool start"], 6) == 0.6 + 0.9  # three steps, and the tool's own 0.9 s
    assert round(sum(steps.values()), 6) == 11.5


@posix_only("process groups and SIGTERM")
def test_a_bench_sent_sigterm_stops_the_servers_it_started(tmp_path: Path) -> None:
    """bench/serving.py, bench.py and staff_check.py call exit_on_sigterm: SIGTERM to the bench
    runs `started`'s clean-up, so no server outlives it."""
    pid_file = tmp_path / "server.pid"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from devsupport import exit_on_sigterm, started\n"
        "exit_on_sigterm()\n"
        "with started([sys.executable, '-c', 'import time; time.sleep(600)'], cwd=Path('.')) as s:\n"
        f"    Path({str(pid_file)!r}).write_text(str(s.proc.pid))\n"
        "    time.sleep(600)\n"
    )
    bench = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        server = int(pid_file.read_text())
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=30) == 128 + signal.SIGTERM
        with pytest.raises(ProcessLookupError):
            os.killpg(server, 0)  # the server's whole process group is gone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bench.pid, signal.SIGKILL)
