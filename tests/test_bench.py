"""Smoke test of bench/bench.py in --quick mode: it runs end to end and writes a sane table.

It asserts the shape of the report, never timings (those depend on the machine and its load).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
    cmd = [sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--out", str(out)]
    template = os.environ.get("COPIER_MLOPS_CCDS_TEMPLATE") or (
        str(CCDS_MIRROR) if CCDS_MIRROR.exists() else ""
    )
    # Without a copy of ccds's template (a fresh machine here: GitHub is unreachable and its code
    # may not be vendored), the smoke test measures copier-mlops alone and checks that part.
    cmd += ["--ccds-template", template] if template else ["--no-ccds"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
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
    assert "## Table" not in block and "`tracking." not in doc.split(block)[0]
