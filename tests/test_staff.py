"""Course staff's command, `python -m staff`. roster: one project per CSV row, in parallel; a bad
row never stops the others. fleet: a class of 10 projects generated at v0.1.0 (by roster), each
left in a different state by its student, updated to v0.2.0 with the real copier CLI, two at a
time. A term on a real git server: provision, students' pushes (hostile ones included), collect
at the deadline, check in bubblewrap's sandbox in two shards, report (its page in Chromium).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from staff import fleet, roster
from tests.conftest import (
    COPIER,
    DEV_BIN,
    IDENTITY,
    ROOT,
    answers_of,
    commit,
    copier_copy,
    dev_tool,
    env_without_dev_venv,
    git,
    pip_index_url,
    run_captured,
    template_repo,
    tool_bin,
)

# ================================================================== roster

STAFF_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # `python -m staff` from any folder
PRESET = ROOT / "presets" / "mnist-course.yml"
BAD_LINE = 6  # the bad row sits among the good ones, not at the end
# The roster batch's good rows: more than --jobs (each row costs a generation).
GOOD = [f"s{i:03d}" for i in range(1, 9)]


def staff(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m staff ARGS`, the command staff type."""
    return run_captured([sys.executable, "-m", "staff", *args], cwd=cwd, env=env or STAFF_ENV)


def run_roster(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return staff("roster", *args, cwd=cwd)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("cmd", [["staff", "roster"], ["staff.roster"]])
def test_help(cmd: list[str]) -> None:
    proc = (
        staff(*cmd[1:], "--help")
        if cmd[0] == "staff"
        else run_captured([sys.executable, "-m", *cmd, "--help"], env=STAFF_ENV)
    )
    assert proc.returncode == 0
    assert "--create-env" in proc.stdout and "column `id`" in proc.stdout


def test_staff_lists_its_subcommands() -> None:
    proc = staff("--help")
    assert proc.returncode == 0
    for name in ("roster", "provision", "fleet", "collect", "check", "report"):
        assert f"  {name} " in proc.stdout
    assert staff("grade").returncode == 2


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
    """The GOOD rows and one bad one (a two-line name) through the real script, 2 at a time."""
    tmp = tmp_path_factory.mktemp("roster")
    good = [[sid, f"Student {int(sid[1:])}", f"{sid}@example.org"] for sid in GOOD]
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
    assert made == GOOD
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
    assert len(report) == len(GOOD) + 1
    assert [r["id"] for r in report if r["status"] == "ok"] == GOOD
    (bad,) = [r for r in report if r["status"] != "ok"]
    assert (bad["id"], bad["line"], bad["status"]) == ("s999", BAD_LINE, "failed")
    assert "author_name" in bad["error"] and "one line" in bad["error"]
    assert Path(bad["log"]).is_file() and not (out / "s999").exists()
    with (out / "roster-report.csv").open(encoding="utf-8", newline="") as f:
        assert [r["id"] for r in csv.DictReader(f)] == [r["id"] for r in report]
    # Progress (stderr is not a terminal: one line per project) and the final summary.
    rows = len(GOOD) + 1
    assert proc.stderr.count(f"/{rows}] ") == rows
    summary = f"{rows} projects: {len(GOOD)} ok, 0 already there, 0 without environment, 1 failed"
    assert summary in proc.stdout
    (line,) = [x for x in proc.stdout.splitlines() if f"line {BAD_LINE}, id s999: failed: " in x]
    assert "author_name" in line and "one line" in line  # copier's refusal, whatever its wording


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


def test_an_answer_the_project_was_not_asked_is_not_a_difference(tmp_path: Path) -> None:
    """A preset's accelerator with ml_framework=sklearn: copier skips the question and records
    no answer, so a second provision of the same class must still find its own projects."""
    (tmp_path / ".copier-answers.yml").write_text(
        "_src_path: /t\nml_framework: sklearn\nauthor_name: Ada\n", encoding="utf-8"
    )
    wanted = {"ml_framework": "sklearn", "accelerator": "cpu", "author_name": "Ada"}
    assert roster.not_ours(tmp_path, "/t", wanted) == ""
    assert "author_name='Ada' (row: 'Alan')" in roster.not_ours(
        tmp_path, "/t", {**wanted, "author_name": "Alan"}
    )


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


# ================================================================== fleet

FLEET, ROSTER = "fleet", "roster"
IDS = [f"s{i:03d}" for i in range(1, 11)]
# What each student did after generation (the rest left their project untouched).
MERGES_CODE, MERGES_README, CONFLICTS = "s005", "s006", "s007"
DIRTY_MODIFIED, DIRTY_UNTRACKED, DELETED = "s008", "s009", "s010"
UNTOUCHED = IDS[:4]
UPDATED = [*UNTOUCHED, MERGES_CODE, MERGES_README]

STUDENT_FUNCTION = '\n\ndef student_helper() -> str:\n    return "written by the student"\n'
STUDENT_TITLE = "# Numbers, my version"
STUDENT_IGNORE = "student-scratch/"
UNCOMMITTED = "\n# work in progress, not committed\n"
TEMPLATE_NEWS = "TEMPLATE-V2: the course added this section"
TEMPLATE_IGNORE = "*.template-v2-checkpoint"
# v0.2.0 also raises a dev-dependency floor: updated projects must be flagged for `make env`.
OLD_DEV_DEP, NEW_DEV_DEP = '"pytest>=8"', '"pytest>=8.3"'


def run_py(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = staff(command, *args)
    print(proc.stdout, proc.stderr[-4000:], sep="\n")
    return proc


def snapshot(project: Path) -> str:
    """HEAD, git status and every file's bytes (git's folder aside): equal means untouched."""
    if not project.exists():
        return "missing"
    digest = hashlib.sha256()
    digest.update(git(project, "rev-parse", "HEAD").encode())
    digest.update(git(project, "status", "--porcelain", "--untracked-files=all").encode())
    for path in sorted(project.rglob("*")):
        if ".git" not in path.relative_to(project).parts and path.is_file():
            digest.update(str(path.relative_to(project)).encode() + path.read_bytes())
    return digest.hexdigest()


def report_of(out: Path, name: str = "fleet-report") -> dict[str, dict[str, object]]:
    rows = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    return {row["id"]: row for row in rows}


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("fleet")
    repo = template_repo(tmp / "template")
    commit(repo, "release 0.1.0", tag="v0.1.0")
    roster_csv = tmp / "roster.csv"
    roster_csv.write_text("id,name\n" + "".join(f"{i},Student {i}\n" for i in IDS), "utf-8")
    out = tmp / "projects"
    args = [str(roster_csv), "--preset", str(PRESET), "--template", str(repo), "--vcs-ref",
            "v0.1.0", "--out", str(out), "--jobs", "2"]  # fmt: skip
    first = run_py(ROSTER, *args)
    assert first.returncode == 0, first.stderr
    # Running the roster again, as its summary advises after fixing rows, changes nothing.
    before_rerun = {i: snapshot(out / i) for i in IDS}
    rerun = run_py(ROSTER, *args)
    after_rerun = {i: snapshot(out / i) for i in IDS}

    # The students' work, each committed except where the case says otherwise.
    init = out / MERGES_CODE / "src" / "numbers_env" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + STUDENT_FUNCTION, encoding="utf-8")
    commit(init.parents[2], "student: a helper")
    readme = out / MERGES_README / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# numbers-env\n"), text[:80]
    readme.write_text(text.replace("# numbers-env\n", STUDENT_TITLE + "\n", 1), "utf-8")
    commit(readme.parent, "student: my title")
    with (out / CONFLICTS / ".gitignore").open("a", encoding="utf-8") as f:
        f.write(STUDENT_IGNORE + "\n")  # the template adds its own last line here: a conflict
    commit(out / CONFLICTS, "student: ignore my scratch folder")
    with (out / DIRTY_MODIFIED / "README.md").open("a", encoding="utf-8") as f:
        f.write(UNCOMMITTED)
    (out / DIRTY_UNTRACKED / "scratch.py").write_text("x = 1\n", encoding="utf-8")
    shutil.rmtree(out / DELETED)

    # Release 0.2.0: a README section, a new file, a last .gitignore line, a dependency floor.
    with (repo / "template" / "README.md.jinja").open("a", encoding="utf-8") as f:
        f.write(f"\n## Course news\n\n{TEMPLATE_NEWS}\n")
    (repo / "template" / "CONTRIBUTING.md").write_text("Template v2 file.\n", encoding="utf-8")
    with (repo / "template" / ".gitignore.jinja").open("a", encoding="utf-8") as f:
        f.write(TEMPLATE_IGNORE + "\n")
    packages = repo / "extensions" / "data.yml"  # the dev tools' floors (dev_packages)
    config = packages.read_text(encoding="utf-8")
    assert config.count(OLD_DEV_DEP) == 1, "the test's dependency change needs a new anchor"
    packages.write_text(config.replace(OLD_DEV_DEP, NEW_DEV_DEP), encoding="utf-8")
    commit(repo, "release 0.2.0", tag="v0.2.0")

    states = {i: snapshot(out / i) for i in IDS}
    dry_targets = [str(out / i) for i in ("s001", CONFLICTS, DIRTY_MODIFIED, DELETED)]
    dry = run_py(FLEET, *dry_targets, "--dry-run", "--jobs", "2", "--report",
                 str(tmp / "dry" / "report"))  # fmt: skip
    after_dry = {i: snapshot(out / i) for i in IDS}

    run1 = run_py(FLEET, str(out), "--jobs", "2")
    report1 = report_of(out)
    after_run1 = {i: snapshot(out / i) for i in IDS}
    run2 = run_py(FLEET, str(out), "--jobs", "2")
    return {
        "out": out, "tmp": tmp, "rerun": rerun, "before_rerun": before_rerun,
        "after_rerun": after_rerun, "states": states,
        "dry": dry, "after_dry": after_dry, "run1": run1, "report1": report1,
        "after_run1": after_run1, "run2": run2, "report2": report_of(out),
        "after_run2": {i: snapshot(out / i) for i in IDS},
    }  # fmt: skip


@pytest.mark.slow
def test_roster_rerun_keeps_every_project(klass: dict[str, object]) -> None:
    rerun = klass["rerun"]
    assert isinstance(rerun, subprocess.CompletedProcess)
    assert rerun.returncode == 0, rerun.stdout
    assert "10 projects: 0 ok, 10 already there, 0 without environment, 0 failed" in rerun.stdout
    out = Path(str(klass["out"]))
    report = json.loads((out / "roster-report.json").read_text(encoding="utf-8"))
    assert {r["status"] for r in report} == {"exists"}
    assert klass["after_rerun"] == klass["before_rerun"]


@pytest.mark.slow
def test_dry_run_predicts_and_touches_nothing(klass: dict[str, object]) -> None:
    dry = klass["dry"]
    assert isinstance(dry, subprocess.CompletedProcess)
    assert dry.returncode == 1
    assert klass["after_dry"] == klass["states"]
    report = report_of(Path(str(klass["tmp"])) / "dry", "report")
    assert {k: v["status"] for k, v in report.items()} == {
        "s001": "updated",
        CONFLICTS: "conflicts",
        DIRTY_MODIFIED: "dirty",
        DELETED: "failed",
    }
    assert report[CONFLICTS]["conflicts"] == [".gitignore"]
    assert report["s001"]["to_version"] == "v0.2.0"
    assert "Dry run (nothing changed)" in dry.stdout


@pytest.mark.slow
def test_fleet_classifies_every_project(klass: dict[str, object]) -> None:
    run1, report = klass["run1"], klass["report1"]
    assert isinstance(run1, subprocess.CompletedProcess) and isinstance(report, dict)
    assert run1.returncode == 1  # conflicts, dirty and failed projects need a look
    status = {k: v["status"] for k, v in report.items()}
    assert status == {
        **dict.fromkeys(UPDATED, "updated"),
        CONFLICTS: "conflicts",
        DIRTY_MODIFIED: "dirty",
        DIRTY_UNTRACKED: "dirty",
        DELETED: "failed",
    }
    for i in [*UPDATED, CONFLICTS]:
        assert (report[i]["from_version"], report[i]["to_version"]) == ("v0.1.0", "v0.2.0")
        assert report[i]["dependencies_changed"] == ["pyproject.toml"], i
    assert report[CONFLICTS]["conflicts"] == [".gitignore"]
    assert "scratch.py" in str(report[DIRTY_UNTRACKED]["detail"])
    assert "missing folder" in str(report[DELETED]["detail"])
    out = Path(str(klass["out"]))
    with (out / "fleet-report.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == IDS
    assert rows[IDS.index(CONFLICTS)]["conflicts"] == ".gitignore"
    assert run1.stderr.count("/10] ") == 10  # one progress line per project
    assert (
        "10 projects: 6 updated, 1 with conflicts, 0 already current, 2 skipped (uncommitted "
        "work), 1 failed" in run1.stdout
    )
    assert "make env" in run1.stdout


@pytest.mark.slow
def test_updated_projects_are_committed_with_the_students_work(klass: dict[str, object]) -> None:
    out = Path(str(klass["out"]))
    for i in UPDATED:
        project = out / i
        assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
        assert git(project, "log", "-1", "--format=%s").strip() == (
            "Update to copier-mlops template v0.2.0 (from v0.1.0)"
        )
        assert answers_of(project)["_commit"] == "v0.2.0"
        assert answers_of(project)["author_name"] == f"Student {i}"
        readme = (project / "README.md").read_text(encoding="utf-8")
        assert TEMPLATE_NEWS in readme
        assert (project / "CONTRIBUTING.md").read_text(encoding="utf-8") == "Template v2 file.\n"
        assert NEW_DEV_DEP in (project / "pyproject.toml").read_text(encoding="utf-8")
        assert "<<<<<<<" not in (project / ".gitignore").read_text(encoding="utf-8")
    init = out / MERGES_CODE / "src" / "numbers_env" / "__init__.py"
    assert STUDENT_FUNCTION.strip() in init.read_text(encoding="utf-8")
    readme = (out / MERGES_README / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(STUDENT_TITLE + "\n") and TEMPLATE_NEWS in readme


@pytest.mark.slow
def test_conflict_is_left_for_the_owner_uncommitted(klass: dict[str, object]) -> None:
    project = Path(str(klass["out"])) / CONFLICTS
    assert git(project, "log", "-1", "--format=%s").strip() == "student: ignore my scratch folder"
    status = git(project, "status", "--porcelain")
    assert "UU .gitignore" in status  # git shows it as "both modified"
    lines = (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("<<<<<<< "))
    end = next(n for n, line in enumerate(lines) if line.startswith(">>>>>>> "))
    assert STUDENT_IGNORE in lines[start:end] and TEMPLATE_IGNORE in lines[start:end]
    assert TEMPLATE_NEWS in (project / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_dirty_and_deleted_projects_are_untouched(klass: dict[str, object]) -> None:
    out = Path(str(klass["out"]))
    states, after = klass["states"], klass["after_run1"]
    assert isinstance(states, dict) and isinstance(after, dict)
    for i in (DIRTY_MODIFIED, DIRTY_UNTRACKED, DELETED):
        assert after[i] == states[i], i
    assert (out / DIRTY_MODIFIED / "README.md").read_text(encoding="utf-8").endswith(UNCOMMITTED)
    assert answers_of(out / DIRTY_MODIFIED)["_commit"] == "v0.1.0"
    assert not (out / DELETED).exists()


@pytest.mark.slow
def test_second_run_changes_nothing(klass: dict[str, object]) -> None:
    run2, report = klass["run2"], klass["report2"]
    assert isinstance(run2, subprocess.CompletedProcess) and isinstance(report, dict)
    assert klass["after_run2"] == klass["after_run1"]
    status = {k: v["status"] for k, v in report.items()}
    assert status == {
        **dict.fromkeys(UPDATED, "current"),
        CONFLICTS: "conflicts",  # still unresolved: reported again, not touched
        DIRTY_MODIFIED: "dirty",
        DIRTY_UNTRACKED: "dirty",
        DELETED: "failed",
    }
    assert "earlier update" in str(report[CONFLICTS]["detail"])
    assert "6 already current" in run2.stdout


# ------------------------------------------------------------------ units
def test_dependency_view_ignores_tool_settings() -> None:
    base = (
        '[project]\nname = "x"\ndependencies = ["numpy>=1.26"]\n\n[tool.ruff]\nline-length = 100\n'
    )
    ruff_only = base.replace("100", "120")
    new_dep = base.replace('"numpy>=1.26"', '"numpy>=2"')
    view = fleet.dependency_view
    assert view("pyproject.toml", base) == view("pyproject.toml", ruff_only)
    assert view("pyproject.toml", base) != view("pyproject.toml", new_dep)
    assert view("pyproject.toml", "<<<<<<< before updating\n") != view("pyproject.toml", base)


def test_newest_release_follows_pep440_and_skips_prereleases(tmp_path: Path) -> None:
    repo = tmp_path / "t"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    (repo / "f").write_text("x", encoding="utf-8")
    commit(repo, "one")
    for tag in ("v0.9.0", "v0.10.0", "v0.10.1.post1", "v0.11.0rc1", "not-a-version"):
        git(repo, "tag", tag)
    fleet.newest_release.cache_clear()
    assert fleet.newest_release(str(repo)) == "v0.10.1.post1"
    assert fleet.git_url("gh:copier-mlops/copier-mlops") == (
        "https://github.com/copier-mlops/copier-mlops.git"
    )


def test_log_folders_beside_the_projects_are_not_projects(tmp_path: Path) -> None:
    """provision's output folder, as fleet reads it mid-term (docs/course-staff.md 8.2)."""
    for name in ("s1", "roster-logs", "provision-logs", "fleet-logs"):
        (tmp_path / name).mkdir()
    assert [i for i, _ in fleet.projects_of([tmp_path])] == ["s1"]


def test_no_projects_is_refused(tmp_path: Path) -> None:
    proc = run_py(FLEET, str(tmp_path))
    assert proc.returncode == 2
    assert "no projects in" in proc.stderr


def test_help_describes_statuses() -> None:
    proc = run_py(FLEET, "--help")
    assert proc.returncode == 0
    for word in ("updated", "conflicts", "current", "dirty", "failed", "--dry-run", "make env"):
        assert word in proc.stdout


@pytest.mark.slow
def test_revert_no_commit_and_copier_errors(tmp_path: Path) -> None:
    repo = template_repo(tmp_path / "template")
    commit(repo, "release 0.1.0", tag="v0.1.0")
    out = tmp_path / "projects"
    for name in ("conflicted", "reviewed"):
        gen = run_captured([COPIER, "copy", "--trust", "--defaults", "--data", "create_env=false",
                            "--data", "git_init=true", str(repo), str(out / name)])  # fmt: skip
        assert gen.returncode == 0, gen.stderr
    conflicted, reviewed = out / "conflicted", out / "reviewed"
    with (conflicted / ".gitignore").open("a", encoding="utf-8") as f:
        f.write(STUDENT_IGNORE + "\n")
    commit(conflicted, "student: ignore my scratch folder")
    with (repo / "template" / ".gitignore.jinja").open("a", encoding="utf-8") as f:
        f.write(TEMPLATE_IGNORE + "\n")
    commit(repo, "release 0.2.0", tag="v0.2.0")
    before = snapshot(conflicted)

    revert = run_py(FLEET, str(conflicted), "--on-conflict", "revert", "--report",
                    str(tmp_path / "r1"))  # fmt: skip
    assert revert.returncode == 1
    (row,) = json.loads((tmp_path / "r1.json").read_text(encoding="utf-8"))
    assert (row["status"], row["conflicts"]) == ("conflicts", [".gitignore"])
    assert "reverted" in row["detail"]
    assert snapshot(conflicted) == before  # back at the student's last commit, nothing else

    bogus = run_py(FLEET, str(conflicted), "--vcs-ref", "v9.9.9", "--report", str(tmp_path / "r2"))
    assert bogus.returncode == 1
    (row,) = json.loads((tmp_path / "r2.json").read_text(encoding="utf-8"))
    assert row["status"] == "failed" and "v9.9.9" in Path(row["log"]).read_text(encoding="utf-8")
    assert snapshot(conflicted) == before

    head = git(reviewed, "rev-parse", "HEAD")
    first = run_py(FLEET, str(reviewed), "--no-commit", "--report", str(tmp_path / "r3"))
    assert first.returncode == 0
    (row,) = json.loads((tmp_path / "r3.json").read_text(encoding="utf-8"))
    assert row["status"] == "updated" and "--no-commit" in row["detail"]
    assert git(reviewed, "rev-parse", "HEAD") == head  # not committed
    assert TEMPLATE_IGNORE in (reviewed / ".gitignore").read_text(encoding="utf-8")
    pending = snapshot(reviewed)
    again = run_py(FLEET, str(reviewed), "--report", str(tmp_path / "r4"))
    assert again.returncode == 0  # an update waiting for review is not the student's dirt
    (row,) = json.loads((tmp_path / "r4.json").read_text(encoding="utf-8"))
    assert (row["status"], row["to_version"]) == ("updated", "v0.2.0")
    assert "not committed yet" in row["detail"]
    assert snapshot(reviewed) == pending


# ------------------------------------------------------------------ one bad project among many
def committed_project(path: Path, answers: str) -> Path:
    """A git repository whose committed answers file holds `answers` (text, as written)."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "-b", "main")
    (path / ".copier-answers.yml").write_text(answers, encoding="utf-8")
    commit(path, "generated")
    return path


MALFORMED_ANSWERS = {
    "broken": "_commit: v0.1.0\n_src_path: [unclosed\n",  # not YAML
    "listed": "- _commit\n- v0.1.0\n",  # YAML, not a mapping
}


def test_malformed_answers_fail_that_project_only(tmp_path: Path) -> None:
    """Projects with an unreadable answers file are reported failed with the reason; the others
    proceed (already at --vcs-ref: current, no copier run needed) and the report is written."""
    out = tmp_path / "projects"
    for name in ("good1", "good2"):
        committed_project(out / name, f"_commit: v0.1.0\n_src_path: {tmp_path / 'template'}\n")
    for name, text in MALFORMED_ANSWERS.items():
        committed_project(out / name, text)
    proc = run_py(FLEET, str(out), "--vcs-ref", "v0.1.0", "--jobs", "2")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = report_of(out)
    assert {k: v["status"] for k, v in report.items()} == {
        "good1": "current", "good2": "current", "broken": "failed", "listed": "failed",
    }  # fmt: skip
    assert "unreadable .copier-answers.yml" in str(report["broken"]["detail"])
    assert "not a mapping" in str(report["listed"]["detail"])
    assert "4 projects: 0 updated, 0 with conflicts, 2 already current" in proc.stdout
    assert (out / "fleet-report.csv").is_file()


# ================================================================== a term: provision ... report
# 12 students on a real git server (git daemon, 127.0.0.1): six as the issue lists them, six
# hostile. One class, one rubric, checked in two shards in bubblewrap's sandbox; shard 1 is
# stopped by SIGTERM midway and run again. Projects are small (no example, no framework) and
# share one warm uv cache, so each environment is built offline from the student's lock.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
]  # tests run as root
DEADLINE = "2027-01-15T23:59:00+00:00"
ON_TIME, LATE = "2027-01-15T12:00:00+00:00", "2027-01-16T09:00:00+00:00"
PUSH_WORK = ["good", "failing", "syntax", "badlock", "late", "lint"]  # "idle" never pushes
HOSTILE = ["rmhome", "loop", "net", "escape", "bigfile", "forkbomb"]
CLASS = ["good", "failing", "syntax", "badlock", "late", "lint", "idle", *HOSTILE]
FILE_LIMIT_MB = 100
EVALUATE = """import json
import pathlib
import time

run = pathlib.Path("runs") / time.strftime("%Y%m%d-%H%M%S")
run.mkdir(parents=True, exist_ok=True)
(run / "metrics.json").write_text(json.dumps({"accuracy": ACCURACY}))
"""
# The rubric a course would write: the four built-in checks (lint is `make lint`: ruff check,
# ruff format --check, mypy) and three of its own. Total weight 8.
RUBRIC = """
timeout: 150
builtin: {environment: 1, doctor: 1, tests: {weight: 2, timeout: 20}, lint: 1}
checks:
  - name: evaluate
    run: .venv/bin/python -m PKG.evaluate
    timeout: 60
    weight: 2
    expect: ["runs/*/metrics.json: accuracy >= 0.9"]
  - name: provided-tests
    unchanged: [tests/test_PKG.py]
    weight: 1
"""


def hostile_test(kind: str, canaries: dict[str, Path], port: int) -> str:
    """A student's test that attacks the machine; each must stay inside the sandbox."""
    body = {
        # $HOME is the sandbox's; staff's real home (a canary folder here) is not visible.
        "rmhome": f"shutil.rmtree(os.environ['HOME'], ignore_errors=True)\n"
        f"    shutil.rmtree({str(canaries['home'])!r})",
        "loop": "while True:\n        pass",
        "net": f"socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'leak')",
        "escape": f"for path in {[str(p) for p in canaries['outside']]!r}:\n"
        "        try:\n            pathlib.Path(path).write_text('escaped')\n"
        "        except OSError as exc:\n            print(path, exc)\n"
        "    raise AssertionError('tried to write outside')",
        "bigfile": "with open('big.bin', 'wb') as f:\n"
        "        for _ in range(32):\n            f.write(b'0' * 64 * 2**20)",
        "forkbomb": "while True:\n        if os.fork() == 0:\n            time.sleep(60)",
    }[kind]
    return (
        "import os\nimport pathlib\nimport shutil\nimport socket\nimport time\n\n\n"
        f"def test_{kind}() -> None:\n    {body}\n"
    )


def git_daemon(base: Path) -> tuple[subprocess.Popen[bytes], int]:
    """git's own server on 127.0.0.1 with pushes allowed; (process, port)."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = shutil.which("git-daemon") or "/usr/lib/git-core/git-daemon"
    proc = subprocess.Popen(
        [daemon, "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}",
         f"--port={port}", "--listen=127.0.0.1", str(base)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise AssertionError("git daemon did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def student_commit(clone: Path, message: str, date: str) -> None:
    env = {**os.environ, "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
    for args in (["add", "--all"], ["commit", "--quiet", "-m", message], ["push", "--quiet"]):
        proc = subprocess.run(["git", *IDENTITY, *args], cwd=clone, env=env, capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def term(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import socket

    tmp = tmp_path_factory.mktemp("term")
    server = tmp / "server"
    for sid in CLASS:  # the host's admin made the (empty) repositories
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(server / "ml" / f"{sid}.git")], check=True)  # fmt: skip
    daemon, port = git_daemon(server)
    listener = socket.create_server(("127.0.0.1", 0))  # the "network" hostile test's target
    listener.setblocking(False)
    try:
        yield run_term(template, tmp, port, listener)
    finally:
        listener.close()
        stop(daemon)


def run_term(template: Path, tmp: Path, port: int, listener: Any) -> dict[str, Any]:
    import signal
    import time

    remote = f"git://127.0.0.1:{port}/ml/{{id}}.git"
    roster_csv = tmp / "roster.csv"
    roster_csv.write_text("id,name\n" + "".join(f"{s},Student {s}\n" for s in CLASS), "utf-8")
    provision_args = [
        "provision", str(roster_csv), "--template", str(template), "--out", str(tmp / "projects"),
        "--remote", remote, "--jobs", "2", "--data", "example=none", "--data", "ml_framework=none",
        "--data", "ci=none", "--data", "dockerfile=false", "--data", "project_name=Digits",
    ]  # fmt: skip
    t0 = time.monotonic()
    first = staff(*provision_args)
    times = {"provision": time.monotonic() - t0}
    print(first.stdout, first.stderr[-3000:])
    pkg = str(answers_of(tmp / "projects" / "good")["package_name"])

    # A warm shared uv cache, and one lock file the students commit (same dependencies).
    cache = tmp / "staff-cache"  # --cache: one folder per tool
    uv_env = {
        **os.environ,
        "UV_CACHE_DIR": str(cache / "uv"),
        "PATH": f"{DEV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    work = tmp / "students"
    clones = {}
    for sid in [*PUSH_WORK, *HOSTILE]:
        clones[sid] = work / sid
        git(tmp, "clone", "--quiet", remote.format(id=sid), str(clones[sid]))
    lock = subprocess.run([dev_tool("uv"), "sync", "--quiet"], cwd=clones["good"], env=uv_env, capture_output=True, text=True, check=False)  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    uv_lock = (clones["good"] / "uv.lock").read_text(encoding="utf-8")
    shutil.rmtree(clones["good"] / ".venv")

    canaries = {"home": tmp / "staff-home", "outside": [
        tmp / "escaped-into-tmp.txt", tmp / "checks-1" / "escaped.txt", tmp / "submissions" / "escaped.txt",
        tmp / "projects" / "good" / "escaped.txt", ROOT / "escaped.txt",
    ]}  # fmt: skip
    canaries["home"].mkdir()
    (canaries["home"] / "precious.txt").write_text("staff's files")

    def work_on(sid: str, accuracy: float = 0.97) -> Path:
        clone = clones[sid]
        (clone / "uv.lock").write_text(uv_lock, encoding="utf-8")
        (clone / "src" / pkg / "evaluate.py").write_text(
            EVALUATE.replace("ACCURACY", str(accuracy))
        )
        return clone

    student_commit(work_on("good"), "my solution", ON_TIME)
    clone = work_on("failing", accuracy=0.5)
    (clone / "tests" / "test_mine.py").write_text(
        "def test_mine() -> None:\n    assert 1 + 1 == 3\n"
    )
    student_commit(clone, "wip", ON_TIME)
    clone = work_on("syntax")
    (clone / "src" / pkg / "model.py").write_text("def fit(:\n    pass\n")
    (clone / "tests" / "test_model.py").write_text(f"from {pkg} import model\n\n\ndef test_fit() -> None:\n    assert model\n")  # fmt: skip
    student_commit(clone, "model", ON_TIME)
    clone = work_on("badlock")
    (clone / "uv.lock").write_text(
        uv_lock.replace("[[package]]", "[[package]\n", 1), encoding="utf-8"
    )
    student_commit(clone, "edited the lock by hand", ON_TIME)
    clone = work_on("lint")
    evaluate = clone / "src" / pkg / "evaluate.py"
    evaluate.write_text("import os\n" + evaluate.read_text(encoding="utf-8"), encoding="utf-8")
    student_commit(clone, "works, but an unused import", ON_TIME)
    student_commit(work_on("late"), "on time", ON_TIME)
    (clones["late"] / "tests" / "test_mine.py").write_text(
        "def test_late() -> None:\n    assert False\n"
    )
    student_commit(clones["late"], "after the deadline", LATE)
    for sid in HOSTILE:
        clone = work_on(sid)
        (clone / "tests" / "test_attack.py").write_text(
            hostile_test(sid, canaries, listener.getsockname()[1])
        )
        student_commit(clone, "attack", ON_TIME)

    t0 = time.monotonic()
    collected = staff("collect", str(roster_csv), "--remote", remote, "--deadline", DEADLINE, "--out", str(tmp / "submissions"))  # fmt: skip
    times["collect"] = time.monotonic() - t0
    print(collected.stdout, collected.stderr[-2000:])

    rubric = tmp / "rubric.yml"
    rubric.write_text(RUBRIC.replace("PKG", pkg), encoding="utf-8")
    check_env = {
        **STAFF_ENV,
        "HOME": str(canaries["home"]),
        "PATH": f"{DEV_BIN}{os.pathsep}{os.environ['PATH']}",
    }

    def check(shard: int) -> list[str]:
        return [sys.executable, "-m", "staff", "check", str(tmp / "submissions"), "--rubric", str(rubric),
                "--out", str(tmp / f"checks-{shard}"), "--cache", str(cache), "--jobs", "1",
                "--shard", f"{shard}/2", "--max-file-size", str(FILE_LIMIT_MB), "--processes", "64"]  # fmt: skip

    def start(shard: int) -> subprocess.Popen[str]:
        log = (tmp / f"check-{shard}.log").open("a")
        return subprocess.Popen(
            check(shard), env=check_env, stdout=log, stderr=subprocess.STDOUT, text=True
        )

    t0 = time.monotonic()
    one, two = start(1), start(2)
    results_1 = tmp / "checks-1" / "results"
    while not (results_1.is_dir() and any(results_1.glob("*.json"))) and one.poll() is None:
        time.sleep(0.5)
    one.send_signal(signal.SIGTERM)  # as `kill` or a CI runner's cancel
    interrupted = {
        "status": one.wait(timeout=60),
        "saved": sorted(p.stem for p in results_1.glob("*.json")),
    }
    interrupted["report"] = json.loads(
        (tmp / "checks-1" / "report.json").read_text(encoding="utf-8")
    )
    saved_at = {p.stem: p.stat().st_mtime_ns for p in results_1.glob("*.json")}
    one = start(1)  # the re-run finishes the shard, skipping what was checked
    statuses = (one.wait(timeout=900), two.wait(timeout=900))
    interrupted["kept"] = saved_at == {
        s: (results_1 / f"{s}.json").stat().st_mtime_ns for s in saved_at
    }
    times["check"] = time.monotonic() - t0
    try:
        listener.accept()
        leaked = True
    except BlockingIOError:
        leaked = False
    merged = staff(
        "report", str(tmp / "checks-1"), str(tmp / "checks-2"), "--out", str(tmp / "report")
    )
    print(merged.stdout, merged.stderr)
    before = {s: git(tmp, "ls-remote", remote.format(id=s)) for s in CLASS}
    second = staff(*provision_args)
    after = {s: git(tmp, "ls-remote", remote.format(id=s)) for s in CLASS}
    print("times:", times)
    return {
        "tmp": tmp, "first": first, "second": second, "before": before, "after": after,
        "remote": remote, "rubric": rubric, "cache": cache,
        "collected": collected, "statuses": statuses, "interrupted": interrupted, "merged": merged,
        "leaked": leaked, "canaries": canaries, "pkg": pkg, "times": times,
        "logs": {s: (tmp / f"check-{s}.log").read_text(encoding="utf-8") for s in (1, 2)},
        "report": {r["id"]: r for r in json.loads((tmp / "report" / "report.json").read_text("utf-8"))},
    }  # fmt: skip


@pytest.mark.slow
def test_provision_pushes_each_project_once_and_never_over_student_work(
    term: dict[str, Any],
) -> None:
    first, second = term["first"], term["second"]
    assert first.returncode == 0, first.stdout + first.stderr
    rows = json.loads((term["tmp"] / "projects" / "provision-report.json").read_text("utf-8"))
    assert {r["id"]: r["status"] for r in rows} == dict.fromkeys(CLASS, "exists")  # the 2nd run's
    assert second.returncode == 0
    assert f"{len(CLASS)} students: 0 pushed, {len(CLASS)} already on the remote" in second.stdout
    assert f"{len(CLASS)} students: {len(CLASS)} pushed" in first.stdout
    assert term["after"] == term["before"]  # students' commits untouched: nothing pushed
    assert (term["tmp"] / "projects" / "roster-report.json").is_file()  # roster's report too


@pytest.mark.slow
def test_collect_takes_the_last_commit_before_the_deadline(term: dict[str, Any]) -> None:
    assert term["collected"].returncode == 0, term["collected"].stdout
    rows = {
        r["id"]: r
        for r in json.loads(
            (term["tmp"] / "submissions" / "collect-report.json").read_text("utf-8")
        )
    }
    assert {r["status"] for r in rows.values()} == {"collected"}
    late = rows["late"]
    assert (late["later_commits"], late["student_commits"]) == (1, 1)
    assert late["date"].startswith("2027-01-15") or late["date"].startswith("2027-01-16T0")
    assert git(Path(late["path"]), "log", "-1", "--format=%s", late["commit"]).strip() == "on time"
    assert not (Path(late["path"]) / "tests" / "test_mine.py").exists()  # the late file
    assert rows["idle"]["student_commits"] == 0 and rows["good"]["student_commits"] == 1
    assert "later commits, not graded: late" in term["collected"].stdout


# Each student's expected result per check (P pass, F fail, S skipped: no environment).
EXPECTED = {
    "good":     ("PPPPPP", 100.0),
    "late":     ("PPPPPP", 100.0),  # graded at the deadline: the late, failing commit is not
    "failing":  ("PPFPFP", 50.0),
    "syntax":   ("PPFFPP", 62.5),  # builds (nothing imports model.py), but tests and ruff fail
    "lint":     ("PPPFPP", 87.5),  # an unused import: only lint fails
    "badlock":  ("FSSSSP", 12.5),
    "idle":     ("FSSSSP", 12.5),  # never committed a lock file
}  # fmt: skip
CHECKS = ["environment", "doctor", "tests", "lint", "evaluate", "provided-tests"]


@pytest.mark.slow
def test_check_and_report_give_each_student_the_expected_result(term: dict[str, Any]) -> None:
    report = term["report"]
    assert term["statuses"] == (0, 0), term["logs"]
    assert term["merged"].returncode == 0
    assert sorted(report) == sorted(CLASS)  # the two shards, merged
    got = {
        sid: (
            "".join(report[sid]["checks"][c]["status"][0].upper() for c in CHECKS),
            report[sid]["score"],
        )
        for sid in EXPECTED
    }
    assert got == EXPECTED, {s: report[s]["checks"] for s in EXPECTED}
    assert "uv.lock is corrupt" in report["badlock"]["checks"]["environment"]["detail"]
    assert "F401" in report["lint"]["checks"]["lint"]["detail"]  # ruff's finding, not make's
    assert "Unable to find lockfile" in report["idle"]["checks"]["environment"]["detail"]
    assert report["late"]["later_commits"] == 1
    tmp = term["tmp"]
    with (tmp / "report" / "report.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["failing"]["tests"] == "fail" and float(rows["good"]["score"]) == 100.0
    assert "environment: 11/13 passed; 2 not: badlock" in term["merged"].stdout


@pytest.mark.slow
def test_hostile_submissions_are_confined_and_reported(term: dict[str, Any]) -> None:
    report, tmp = term["report"], term["tmp"]
    for sid in HOSTILE:  # each built its environment and was graded; only its tests failed
        checks = report[sid]["checks"]
        assert checks["environment"]["status"] == "pass", (sid, checks)
        assert checks["tests"]["status"] in ("fail", "timeout"), (sid, checks)
        assert checks["evaluate"]["status"] == "pass", (sid, checks)

    def log(sid: str) -> str:
        folder = next(
            p for p in (tmp / "checks-1", tmp / "checks-2") if (p / "logs" / sid).is_dir()
        )
        return (folder / "logs" / sid / "tests.log").read_text(encoding="utf-8", errors="replace")

    assert (term["canaries"]["home"] / "precious.txt").read_text() == "staff's files"
    assert "test_rmhome FAILED" in log("rmhome") or "FAILED tests/test_attack.py" in log("rmhome")
    assert report["loop"]["checks"]["tests"]["status"] == "timeout"
    assert report["loop"]["seconds"] < 150
    assert not term["leaked"]  # nothing reached the listening socket on 127.0.0.1
    assert "Network is unreachable" in log("net") or "Connection refused" in log("net")
    for path in term["canaries"]["outside"]:
        assert not path.exists(), path
    assert any(
        w in log("escape") for w in ("Read-only file system", "Permission denied", "No such file")
    )
    assert "File too large" in log("bigfile")
    assert not list(tmp.glob("checks-*/boxes/*"))  # each copy deleted after its check
    assert "Resource temporarily unavailable" in log("forkbomb")
    # no process of the sandbox users is left
    ps = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True, check=True).stdout
    assert not [u for u in ps.split() if 60000 <= int(u) < 60100]


@pytest.mark.slow
def test_sigterm_leaves_a_consistent_report_and_the_rerun_skips_it(term: dict[str, Any]) -> None:
    interrupted = term["interrupted"]
    assert interrupted["status"] == 1
    assert interrupted["saved"]  # what finished before SIGTERM
    assert sorted(r["id"] for r in interrupted["report"]) == interrupted["saved"]
    assert "interrupted" in term["logs"][1]
    rerun = term["logs"][1].split("interrupted")[-1]
    assert f"{len(interrupted['saved'])} unchanged or without a submission" in rerun
    assert interrupted["kept"]  # their results were not written again


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_report_page_sorts_and_links_logs_in_chromium(term: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    page_path = term["tmp"] / "report" / "report.html"
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())

            def ids() -> list[str]:
                rows: list[str] = page.eval_on_selector_all(
                    "#results tbody tr", "rs => rs.map(r => r.dataset.id)"
                )
                return rows

            assert sorted(ids()) == sorted(CLASS)
            page.click("th:has-text('score')")
            scores = [term["report"][i]["score"] for i in ids()]
            assert scores == sorted(scores)
            page.click("th:has-text('score')")
            assert [term["report"][i]["score"] for i in ids()] == sorted(scores, reverse=True)
            page.click("th:has-text('student')")
            assert ids() == sorted(CLASS)
            assert "environment: 11/13 passed" in page.inner_text("#summary")
            href = page.get_attribute("tr[data-id='failing'] td.fail a", "href")
            assert href and (page_path.parent / href).resolve().is_file()
            page.click("tr[data-id='failing'] td.fail a")
            assert "assert 1 + 1 == 3" in page.inner_text("body")
        finally:
            browser.close()
    assert all(url.startswith("file://") for url in requests), requests  # no external assets


def test_remote_with_a_credential_is_refused_and_urls_are_redacted(tmp_path: Path) -> None:
    from staff import remote

    roster_csv = tmp_path / "r.csv"
    roster_csv.write_text("id\ns1\n", "utf-8")
    proc = staff("provision", str(roster_csv), "--out", str(tmp_path / "p"),
                 "--remote", "https://ta:s3cret-token@git.example.edu/ml/{id}.git")  # fmt: skip
    assert proc.returncode == 2
    assert "credential" in proc.stderr and "s3cret" not in proc.stdout + proc.stderr
    assert not (tmp_path / "p").exists()
    assert remote.redact("fatal: https://tok123@host/x.git and ssh://git:pw@h/y") == (
        "fatal: https://***@host/x.git and ssh://git:***@h/y"
    )
    assert remote.redact("ssh://git@host/ml/s1.git") == "ssh://git@host/ml/s1.git"


def test_provision_refuses_an_out_folder_inside_a_git_repository(tmp_path: Path) -> None:
    """Projects made inside the template's checkout get no repository of their own (the
    tool's git-init says "already inside"), and a push from one would push the checkout."""
    git(tmp_path, "init", "--quiet")
    roster_csv = tmp_path / "r.csv"
    roster_csv.write_text("id\ns1\n", "utf-8")
    proc = staff("provision", str(roster_csv), "--out", str(tmp_path / "projects"),
                 "--remote", "git://127.0.0.1:9/ml/{id}.git")  # fmt: skip
    assert proc.returncode == 2
    assert f"inside the git repository {tmp_path}" in proc.stderr and "outside" in proc.stderr
    assert not (tmp_path / "projects").exists()


def test_check_without_a_sandbox_refuses_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "collect-report.json").write_text("[]")
    rubric = tmp_path / "rubric.yml"
    rubric.write_text("builtin: {lint: 0}\n")
    proc = staff("check", str(tmp_path), "--rubric", str(rubric), "--out", str(tmp_path / "c"),
                 "--bwrap", str(tmp_path / "no-bwrap"))  # fmt: skip
    assert proc.returncode == 2
    assert "bubblewrap" in proc.stderr and "--unsafe" in proc.stderr
    assert "with your files and network" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_a_python_under_tmp_runs_in_the_sandbox(tmp_path: Path) -> None:
    """Staff whose Python (a venv, a clone) lives under /tmp: the sandbox's own /tmp is empty
    and its mount points' parents must stay traversable for the student's user."""
    from staff import sandbox

    venv = tmp_path / "staff" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    box = tmp_path / "boxes" / "s1"
    box.mkdir(parents=True)
    box.chmod(0o777)
    sandbox.probe("bwrap")  # bubblewrap is installed by .ci/run: a missing one fails here
    confined = sandbox.Sandbox("bwrap", readable=[*sandbox.tool_folders(()), venv])
    code = "import subprocess, sys; print(sys.prefix)"
    argv = confined.command(box, box, {"PATH": f"{venv}/bin:/usr/bin:/bin"}, 0)
    proc = subprocess.run([*argv, "python", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(venv)


@pytest.mark.parametrize(
    ("rubric", "message"),
    [
        (
            "checks: [{name: x, run: 'true', expect: ['metrics.json accuracy']}]",
            "FILES: KEY OP NUMBER",
        ),
        ("checks: [{name: x, command: 'true'}]", "unknown key(s) command"),
        ("builtin: {test: 1}", "builtin test"),
        ("checks: [{name: x, exists: [a], expect: ['m.json: a >= 1']}]", "expect needs a run"),
    ],
)
def test_bad_rubric_is_refused_before_anything_runs(
    tmp_path: Path, rubric: str, message: str
) -> None:
    from staff import check

    path = tmp_path / "rubric.yml"
    path.write_text(rubric)
    with pytest.raises(check.CheckError, match=re.escape(message)):
        check.load_rubric(path)


def test_shards_are_stable_and_cover_the_class_once() -> None:
    from staff import check

    ids = [f"s{i:03d}" for i in range(300)]
    shards = [[i for i in ids if check.in_shard(i, (k, 8))] for k in range(1, 9)]
    assert sorted(i for shard in shards for i in shard) == ids
    assert all(20 < len(s) < 56 for s in shards)  # a fair share each
    assert [i for i in reversed(ids) if check.in_shard(i, (3, 8))] == list(reversed(shards[2]))


def test_check_writes_a_kubernetes_indexed_job_and_a_ci_matrix(tmp_path: Path) -> None:
    proc = staff("check", "submissions", "--rubric", "rubric.yml", "--cache", "staff-cache",
                 "--shards", "30", "--write-k8s", str(tmp_path / "job.yaml"),
                 "--write-github", str(tmp_path / "check.yml"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    job = yaml.safe_load((tmp_path / "job.yaml").read_text())
    assert (job["kind"], job["spec"]["completionMode"], job["spec"]["completions"]) == (
        "Job",
        "Indexed",
        30,
    )
    command = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "--shard $((JOB_COMPLETION_INDEX + 1))/30" in command
    flow = yaml.safe_load((tmp_path / "check.yml").read_text())
    assert flow["jobs"]["check"]["strategy"]["matrix"]["shard"] == list(range(1, 31))
    assert "python -m staff report" in str(flow["jobs"]["report"])
    lint = run_captured([dev_tool("actionlint"), str(tmp_path / "check.yml")])
    assert lint.returncode == 0, lint.stdout + lint.stderr


# ------------------------------------------------------------------ pip and Poetry, offline
# A venv (pip) student, generated with its environment and lock, whose packages staff put in the
# shared cache's wheelhouse as docs/course-staff.md 8.4 says (requirements.lock and the build
# backend); then collected and checked in the sandbox, where there is no network: an environment
# that builds came from the cache. A Poetry student (rendered only: Poetry stops at the index
# before reading any lock) fails the environment check with the reason spelled out.
MANAGERS_RUBRIC = "builtin: {environment: 1, doctor: 1, tests: 1, lint: 1}\n"
SMALL = {"example": "none", "ml_framework": "none", "ci": "none", "dockerfile": "false",
         "project_name": "Digits", "python_version": "3.11"}  # fmt: skip
WARM_PIP = ["pip", "hatchling", "editables"]  # the build backend and its editable hook's needs


@pytest.fixture(scope="module")
def managers(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("managers")
    cache = tmp / "staff-cache"
    env = env_without_dev_venv(tool_bin(tmp, "poetry"))
    ids = ["venv", "poetry"]
    for sid in ids:
        project = tmp / "projects" / sid
        index = {"package_index_url": pip_index_url()} if sid == "poetry" else {}
        made = copier_copy(template, project, env, **SMALL, **index, env_manager=sid,
                           create_env=str(sid == "venv").lower())  # fmt: skip
        assert made.returncode == 0, made.stdout[-3000:]
        git(tmp, "clone", "--quiet", "--bare", str(project), str(tmp / "server" / f"{sid}.git"))
    venv = tmp / "projects" / "venv"
    assert (venv / "requirements.lock").is_file()
    wheels = run_captured(
        [venv / ".venv" / "bin" / "python", "-m", "pip", "wheel", "--quiet", "--wheel-dir",
         cache / "pip", "-r", "requirements.lock", *WARM_PIP],
        cwd=venv, env=env,
    )  # fmt: skip
    assert wheels.returncode == 0, wheels.stderr
    roster_csv = tmp / "roster.csv"
    roster_csv.write_text("id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    rubric = tmp / "rubric.yml"
    rubric.write_text(MANAGERS_RUBRIC, encoding="utf-8")
    remote = f"file://{tmp}/server/{{id}}.git"
    collected = staff("collect", str(roster_csv), "--remote", remote, "--out", str(tmp / "subs"))
    assert collected.returncode == 0, collected.stdout + collected.stderr
    check_env = {**STAFF_ENV, "PATH": f"{DEV_BIN}{os.pathsep}{os.environ['PATH']}"}  # poetry, uv
    checked = staff("check", str(tmp / "subs"), "--rubric", str(rubric), "--cache", str(cache),
                    "--out", str(tmp / "checks"), "--jobs", "2", env=check_env)  # fmt: skip
    print(checked.stdout, checked.stderr[-3000:])
    report = json.loads((tmp / "checks" / "report.json").read_text(encoding="utf-8"))
    return {"tmp": tmp, "checked": checked, "report": {r["id"]: r for r in report}}


@pytest.mark.slow
def test_pip_builds_offline_from_the_wheelhouse_and_poetry_says_why_it_cannot(
    managers: dict[str, Any],
) -> None:
    report, tmp = managers["report"], managers["tmp"]
    assert managers["checked"].returncode == 0, managers["checked"].stderr
    checks = report["venv"]["checks"]
    assert {n: c["status"] for n, c in checks.items()} == dict.fromkeys(
        ["environment", "doctor", "tests", "lint"], "pass"
    ), checks
    log = (tmp / "checks" / "logs" / "venv" / "environment.log").read_text(encoding="utf-8")
    assert "pip install" in log and "Looking in links:" in log  # the wheelhouse, no index
    poetry = report["poetry"]["checks"]
    assert poetry["environment"]["status"] == "fail"
    assert "Poetry cannot install without its package index" in poetry["environment"]["detail"]
    assert "check cannot build Poetry environments" in managers["checked"].stderr


# ------------------------------------------------------------------ staff who are not root
NORMAL_UID = 60150  # no account, no groups: a staff member without root (not a sandbox slot's)
SYSTEM_PYTHON = Path("/usr/bin/python3")  # one a normal user can run (the dev venv's is root's)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_staff_who_are_not_root_check_in_a_user_namespace(term: dict[str, Any]) -> None:
    """collect and check run as a normal user (setpriv): bubblewrap's user namespace confines
    the student's code, which runs as that user, never root; staff's home stays intact."""
    if run_captured([SYSTEM_PYTHON, "-c", "import yaml"]).returncode:
        pytest.skip("needs Debian's python3 with python3-yaml (.ci/run installs it)")
    base = Path(tempfile.mkdtemp(prefix="staff-user-"))  # pytest's folders are root's only
    try:
        base.chmod(0o755)
        shutil.copytree(
            ROOT / "staff", base / "staff", ignore=shutil.ignore_patterns("__pycache__")
        )
        (base / "bin").mkdir()
        shutil.copy2(dev_tool("uv"), base / "bin" / "uv")
        shutil.copytree(term["cache"], base / "staff-cache", symlinks=True)
        rubric = term["rubric"].read_text(encoding="utf-8")
        rubric += f'  - name: unprivileged\n    run: test "$(id -u)" = {NORMAL_UID}\n'
        (base / "rubric.yml").write_text(rubric, encoding="utf-8")
        (base / "roster.csv").write_text("id\ngood\nrmhome\n", encoding="utf-8")
        home = base / "home"
        home.mkdir()
        (home / "precious.txt").write_text("staff's files", encoding="utf-8")
        subprocess.run(["chown", "-R", f"{NORMAL_UID}:{NORMAL_UID}", str(base)], check=True)
        env = {"PATH": f"{base / 'bin'}:/usr/bin:/bin", "HOME": str(home),
               "PYTHONPATH": str(base), "LANG": "C.UTF-8"}  # fmt: skip
        as_user = ["setpriv", f"--reuid={NORMAL_UID}", f"--regid={NORMAL_UID}", "--clear-groups",
                   str(SYSTEM_PYTHON), "-m", "staff"]  # fmt: skip
        collected = run_captured([*as_user, "collect", base / "roster.csv", "--remote",
                                  term["remote"], "--deadline", DEADLINE, "--out", base / "subs"],
                                 env=env)  # fmt: skip
        assert collected.returncode == 0, collected.stdout + collected.stderr
        checked = run_captured([*as_user, "check", base / "subs", "--rubric", base / "rubric.yml",
                                "--cache", base / "staff-cache", "--out", base / "checks",
                                "--jobs", "2"], env=env)  # fmt: skip
        print(checked.stdout, checked.stderr[-3000:])
        if checked.returncode == 2 and "cannot create its namespaces" in checked.stderr:
            pytest.skip(f"user namespaces are disabled here: {checked.stderr.strip()}")
        assert checked.returncode == 0, checked.stderr
        report = {r["id"]: r for r in json.loads((base / "checks" / "report.json").read_text())}
        good, rmhome = report["good"]["checks"], report["rmhome"]["checks"]
        assert report["good"]["score"] == 100.0, good
        assert good["unprivileged"]["status"] == "pass"  # not root inside the namespace
        assert rmhome["environment"]["status"] == "pass" and rmhome["tests"]["status"] == "fail"
        assert (home / "precious.txt").read_text(encoding="utf-8") == "staff's files"
        owners = {p.stat().st_uid for p in (base / "checks").rglob("*")}
        assert owners == {NORMAL_UID}, owners  # nothing made as root
    finally:
        shutil.rmtree(base, ignore_errors=True)
