"""staff/roster.py: one project per CSV row, in parallel; a bad row never stops the others."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from staff import roster
from tests.conftest import ROOT, run_captured

SCRIPT = ROOT / "staff" / "roster.py"
PRESET = ROOT / "presets" / "mnist-course.yml"
BAD_LINE = 9  # the bad row sits among the good ones, not at the end


def run_roster(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_captured([sys.executable, SCRIPT, *args], cwd=cwd)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("how", ["path", "module"])
def test_help(how: str) -> None:
    cmd = [sys.executable, str(SCRIPT)] if how == "path" else [sys.executable, "-m", "staff.roster"]
    proc = subprocess.run([*cmd, "--help"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "--create-env" in proc.stdout and "column `id`" in proc.stdout


def test_csv_without_id_column_is_refused_before_anything_runs(tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "r.csv", ["student", "name"], [["s1", "Ada"]])
    proc = run_roster(str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "no 'id' column (found: student, name)" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_column_is_refused_with_the_question_names(tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "r.csv", ["id", "nmae"], [["s1", "Ada"]])
    proc = run_roster(str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "nmae" in proc.stderr and "project_name" in proc.stderr


def test_rows_map_columns_to_answers_and_keep_start_lines(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        ["id", "name", "email", "project_name"],
        [["s1", "Ada\nLovelace", "", "Digits"], [], ["s2", "Alan", "a@example.org", ""]],
    )
    rows = roster.read_roster(path, roster.question_names(str(ROOT)))
    assert [(r.line, r.id) for r in rows] == [(2, "s1"), (5, "s2")]
    assert rows[0].answers == {"author_name": "Ada\nLovelace", "project_name": "Digits"}
    assert rows[1].answers == {"author_name": "Alan", "author_email": "a@example.org"}


def test_id_problems_name_the_line() -> None:
    rows = [roster.Row(2, "s1"), roster.Row(3, "../x"), roster.Row(4, "S1"), roster.Row(5, "s2")]
    problems = roster.id_problems(rows)
    assert set(problems) == {3, 4}
    assert "cannot be a folder name" in problems[3]
    assert "already used on line 2" in problems[4]


def test_failure_reason_picks_copier_validation_message() -> None:
    output = (
        "Traceback...\n  raise ValueError(\nValueError: Validation error for question 'x': no\n"
    )
    assert roster.failure_reason(output) == "Validation error for question 'x': no"


@pytest.fixture(scope="module")
def batch(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """20 good rows and one bad one (a two-line name) through the real script, 2 at a time."""
    tmp = tmp_path_factory.mktemp("roster")
    good = [[f"s{i:03d}", f"Student {i}", f"s{i:03d}@example.org"] for i in range(1, 21)]
    rows = [
        *good[: BAD_LINE - 2],
        ["s999", "Ada\nLovelace", "ada@example.org"],
        *good[BAD_LINE - 2 :],
    ]
    path = write_csv(tmp / "roster.csv", ["id", "name", "email"], rows)
    out = tmp / "projects"
    proc = run_roster(
        str(path), "--preset", str(PRESET), "--template", str(template),
        "--out", str(out), "--jobs", "2",
    )  # fmt: skip
    print(proc.stdout, proc.stderr[-3000:], sep="\n")
    return {"proc": proc, "out": out}


@pytest.mark.slow
def test_roster_generates_every_good_row(batch: dict[str, object]) -> None:
    proc, out = batch["proc"], Path(str(batch["out"]))
    assert isinstance(proc, subprocess.CompletedProcess)
    assert proc.returncode == 1  # some rows failed
    made = sorted(p.name for p in out.iterdir() if (p / ".copier-answers.yml").is_file())
    assert made == [f"s{i:03d}" for i in range(1, 21)]
    for name in made:
        answers = yaml.safe_load((out / name / ".copier-answers.yml").read_text(encoding="utf-8"))
        number = int(name[1:])
        assert answers["author_name"] == f"Student {number}"  # the row's value
        assert answers["author_email"] == f"{name}@example.org"
        assert answers["package_name"] == "numbers_env"  # the preset's value
        assert answers["create_env"] is False  # batch default, although the preset says true
        assert (out / name / ".git").is_dir()  # git_init from the preset: ready for updates
        assert not (out / name / ".venv").exists()


@pytest.mark.slow
def test_roster_reports_each_row_and_the_bad_one(batch: dict[str, object]) -> None:
    proc, out = batch["proc"], Path(str(batch["out"]))
    assert isinstance(proc, subprocess.CompletedProcess)
    report = json.loads((out / "roster-report.json").read_text(encoding="utf-8"))
    assert len(report) == 21
    assert [r["id"] for r in report if r["status"] == "ok"] == [f"s{i:03d}" for i in range(1, 21)]
    (bad,) = [r for r in report if r["status"] != "ok"]
    assert (bad["id"], bad["line"], bad["status"]) == ("s999", BAD_LINE, "failed")
    assert "author_name" in bad["error"] and "one line" in bad["error"]
    assert Path(bad["log"]).is_file() and not (out / "s999").exists()
    with (out / "roster-report.csv").open(encoding="utf-8", newline="") as f:
        assert [r["id"] for r in csv.DictReader(f)] == [r["id"] for r in report]
    # Progress (stderr is not a terminal: one line per project) and the final summary.
    assert proc.stderr.count("/21] ") == 21
    assert "21 projects: 20 ok, 0 without environment, 1 failed" in proc.stdout
    assert f"line {BAD_LINE}, id s999: failed: Validation error" in proc.stdout


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    results = [
        roster.Result("s1", 2, "ok", "/p/s1", 1.0),
        roster.Result("s2", 3, "failed", "/p/s2", 0.5, "Validation error for question 'x': no"),
    ]
    tty, log = FakeTerminal(), io.StringIO()
    for stream in (tty, log):
        progress = roster.Progress(len(results), stream)
        for res in results:
            progress.update(res)
        progress.close()
    assert "\r\033[K" in tty.getvalue() and "] 2/2  failed 1" in tty.getvalue()
    assert "#" * 30 in tty.getvalue()  # full bar at the end
    assert log.getvalue().splitlines() == [
        "[1/2] s1: ok (1.0s)",
        "[2/2] s2: FAILED: Validation error for question 'x': no (0.5s)",
    ]
