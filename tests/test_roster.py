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
    assert "21 projects: 20 ok, 0 already there, 0 without environment, 1 failed" in proc.stdout
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


# ------------------------------------------------------------------ Excel's encodings, re-runs
NAMES = [("s1", "Zoë Müller"), ("s2", "François Lefèvre")]


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [
        ("cp1252", ","),  # Excel "CSV (Comma delimited)" on Western Windows
        ("cp1252", ";"),  # the same where ',' is the decimal separator (most of Europe)
        ("utf-8-sig", ","),  # Excel "CSV UTF-8": a byte-order mark first
        ("utf-8", ","),
        ("utf-16", "\t"),  # Excel "Unicode Text": UTF-16 with a byte-order mark, tabs
    ],
)
def test_roster_reads_what_excel_saves(tmp_path: Path, encoding: str, delimiter: str) -> None:
    text = "\r\n".join(delimiter.join(r) for r in [("id", "name"), *NAMES]) + "\r\n"
    path = tmp_path / "roster.csv"
    path.write_bytes(text.encode(encoding))
    rows = roster.read_roster(path, roster.question_names(str(ROOT)))
    assert [(r.id, r.answers) for r in rows] == [(i, {"author_name": n}) for i, n in NAMES]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,name\r\ns1,Bad \x81 byte\r\n", "neither UTF-8 nor Windows-1252 (cp1252)"),
        ("id,name\r\ns1,Zoë\r\n".encode("utf-16-le"), "NUL bytes"),
        (
            b"\xef\xbb\xbfid,name\r\ns1,Zo\xeb\r\n",
            "starts with a UTF-8 byte-order mark but is not UTF-8",
        ),
    ],
)
def test_undecodable_roster_exits_2_naming_file_and_encoding(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    proc = run_roster(str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and message in proc.stderr
    assert "CSV UTF-8" in proc.stderr  # what to do
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_rerun_keeps_projects_of_this_roster_and_refuses_others(
    template: Path, tmp_path: Path
) -> None:
    """A cp1252 roster through the real script; the same command again; then a changed row."""
    path = tmp_path / "roster.csv"
    path.write_bytes("id,name\r\ns1,Zoë Müller\r\n".encode("cp1252"))
    out = tmp_path / "out"
    args = [str(path), "--template", str(template), "--out", str(out),
            "--data", "git_init=false", "--data", "example=none"]  # fmt: skip
    first = run_roster(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    answers = yaml.safe_load((out / "s1" / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["author_name"] == "Zoë Müller"
    readme = (out / "s1" / "README.md").read_bytes()

    again = run_roster(*args)
    assert again.returncode == 0, again.stdout
    assert "1 projects: 0 ok, 1 already there" in again.stdout
    (row,) = json.loads((out / "roster-report.json").read_text(encoding="utf-8"))
    assert row["status"] == "exists"
    assert (out / "s1" / "README.md").read_bytes() == readme

    path.write_bytes("id,name\r\ns1,Somebody Else\r\n".encode("cp1252"))
    other = run_roster(*args)
    assert other.returncode == 1
    assert "holds other answers: author_name='Zoë Müller' (row: 'Somebody Else')" in other.stdout
    assert (out / "s1" / "README.md").read_bytes() == readme

    (out / "half").mkdir()  # e.g. an interrupted run
    path.write_bytes(b"id\r\nhalf\r\n")
    half = run_roster(*args)
    assert half.returncode == 1
    assert "is not a copier project" in half.stdout and "delete it and run again" in half.stdout


def test_a_timed_out_command_reports_its_output_as_text() -> None:
    """What a command printed before its timeout, as roster and fleet log it: text, although
    subprocess hands it over as bytes even with text=True (the log showed b'...')."""
    code = "import sys, time; print('started ü', flush=True); time.sleep(30)"
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3)
    assert roster.partial_output(caught.value).strip() == "started ü"


def test_batch_pool_turns_one_crash_into_that_projects_failure() -> None:
    """staff/batch.py's pool, which roster and fleet share: an unexpected error in one project
    is that project's result; the others finish and each result reaches the progress."""
    from staff.batch import run_all

    def work(row: roster.Row) -> roster.Result:
        if row.id == "s2":
            raise KeyError("_src_path")
        return roster.Result(row.id, row.line, "ok", f"/p/{row.id}", 0.1)

    def crashed(row: roster.Row, reason: str) -> roster.Result:
        return roster.Result(row.id, row.line, "failed", "", 0.0, reason)

    log = io.StringIO()
    progress = roster.Progress(3, log)
    rows = [roster.Row(n + 2, f"s{n + 1}") for n in range(3)]
    results = run_all(rows, work, jobs=2, crashed=crashed, done=progress.update)
    assert sorted((r.id, r.status) for r in results) == [
        ("s1", "ok"), ("s2", "failed"), ("s3", "ok"),
    ]  # fmt: skip
    (bad,) = [r for r in results if r.status == "failed"]
    assert bad.error == "unexpected KeyError: '_src_path'"
    assert len(log.getvalue().splitlines()) == 3
