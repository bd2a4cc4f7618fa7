"""`copier update` across tagged releases of the template, with the real copier CLI.

Each test builds a temporary git copy of the working tree (so uncommitted template edits count),
tags releases in it, generates a project, changes the template and updates the project.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from copier import run_copy
from packaging.version import Version

from migrations import answers as migration
from tests.conftest import (
    COPIER_YML,
    ROOT,
    answers_of,
    commit,
    copier_run,
    env_without_dev_venv,
    git,
    run_captured,
    template_repo,
    tool_bin,
)

HOOK_BANNER = "copier-mlops: creating the"  # first line the environment hook prints
GIT_BANNER = "copier-mlops: git repository"  # first line the git-init task prints
MIGRATION_BANNER = "copier-mlops migration 0.1.0"


def tool_env(tmp: Path) -> dict[str, str]:
    """Only uv of the dev venv on PATH; a registered kernel stays in the test folder."""
    return env_without_dev_venv(tool_bin(tmp, "uv"), JUPYTER_DATA_DIR=str(tmp / "jupyter"))


# ------------------------------------------------------------------ user edits survive an update
USER_FUNCTION = '\n\ndef student_helper() -> str:\n    return "written by the student"\n'
USER_TITLE = "# My ML Project, Ada's version"
TEMPLATE_NEWS = "TEMPLATE-V2: the course added this section"
USER_IGNORE = "student-scratch/"
TEMPLATE_IGNORE = "*.template-v2-checkpoint"


@pytest.fixture(scope="module")
def updated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """v0.1.0 project with an env and user edits, updated to v0.2.0; what each step left."""
    tmp = tmp_path_factory.mktemp("update")
    env = tool_env(tmp)
    repo = template_repo(tmp / "template")
    commit(repo, "release 0.1.0", tag="v0.1.0")

    project = tmp / "project"
    # create_env on with uv and a small dependency set: the hook really runs at generation, so
    # "it did not run again" below is a real observation, not a consequence of create_env=false.
    gen = copier_run(
        "copy", "--trust", "--defaults", "--vcs-ref", "v0.1.0",
        "--data", "env_manager=uv", "--data", "ml_framework=none", "--data", "example=none",
        "--data", "ci=none", "--data", "jupyter_kernel=false", "--data", "create_env=true",
        "--data", "git_init=true", "--data", "author_name=Ada",
        str(repo), str(project),
        env=env,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert HOOK_BANNER in gen.stdout + gen.stderr and GIT_BANNER in gen.stdout + gen.stderr
    venv_cfg = project / ".venv" / "pyvenv.cfg"
    assert venv_cfg.is_file(), "the hook did not create the environment at generation"
    venv_mtime = venv_cfg.stat().st_mtime_ns
    assert git(project, "log", "--format=%s").strip(), "git_init made no first commit"

    # The student's work: a changed source file, a new file, an edited README line, and a line
    # added at the end of .gitignore (where the template will add one too: a true conflict).
    init = project / "src" / "my_ml_project" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + USER_FUNCTION, encoding="utf-8")
    (project / "notes").mkdir()
    (project / "notes" / "lab1.md").write_text("# Lab 1\n\nMy notes.\n", encoding="utf-8")
    readme = project / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "# My ML Project\n" in text
    readme.write_text(text.replace("# My ML Project\n", USER_TITLE + "\n", 1), encoding="utf-8")
    with (project / ".gitignore").open("a", encoding="utf-8") as f:
        f.write(USER_IGNORE + "\n")
    commit(project, "student work (and the lock file the hook wrote)")

    # Template v0.2.0: a new README section, a new file, and a line at the end of .gitignore.
    with (repo / "template" / "README.md.jinja").open("a", encoding="utf-8") as f:
        f.write(f"\n## Course news\n\n{TEMPLATE_NEWS}\n")
    (repo / "template" / "CONTRIBUTING.md").write_text("Template v2 file.\n", encoding="utf-8")
    with (repo / "template" / ".gitignore.jinja").open("a", encoding="utf-8") as f:
        f.write(TEMPLATE_IGNORE + "\n")
    commit(repo, "release 0.2.0", tag="v0.2.0")

    upd = copier_run("update", "--trust", "--defaults", cwd=project, env=env)
    return {
        "project": project,
        "proc": upd,
        "venv_cfg": venv_cfg,
        "venv_mtime": venv_mtime,
    }


@pytest.mark.slow
def test_update_applies_template_change(updated: dict[str, object]) -> None:
    proc = updated["proc"]
    assert isinstance(proc, subprocess.CompletedProcess)
    assert proc.returncode == 0, proc.stderr
    project = Path(str(updated["project"]))
    assert TEMPLATE_NEWS in (project / "README.md").read_text(encoding="utf-8")
    assert (project / "CONTRIBUTING.md").read_text(encoding="utf-8") == "Template v2 file.\n"
    assert answers_of(project)["_commit"] == "v0.2.0"


@pytest.mark.slow
def test_update_keeps_every_user_edit(updated: dict[str, object]) -> None:
    project = Path(str(updated["project"]))
    init = (project / "src" / "my_ml_project" / "__init__.py").read_text(encoding="utf-8")
    assert USER_FUNCTION.strip() in init
    assert (project / "notes" / "lab1.md").read_text(encoding="utf-8") == "# Lab 1\n\nMy notes.\n"
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.count(USER_TITLE + "\n") == 1 and "# My ML Project\n" not in readme


@pytest.mark.slow
def test_update_marks_the_true_conflict(updated: dict[str, object]) -> None:
    project = Path(str(updated["project"]))
    lines = (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    # copier's default --conflict inline: git-style markers around both versions.
    start = next(i for i, line in enumerate(lines) if line.startswith("<<<<<<< "))
    middle = lines.index("=======", start)
    end = next(i for i, line in enumerate(lines) if line.startswith(">>>>>>> "))
    assert start < middle < end
    block = lines[start:end]
    assert USER_IGNORE in block and TEMPLATE_IGNORE in block
    # Only the conflicting file has markers; the cleanly merged ones do not.
    for clean in ("README.md", "src/my_ml_project/__init__.py"):
        assert "<<<<<<<" not in (project / clean).read_text(encoding="utf-8")


@pytest.mark.slow
def test_update_does_not_rerun_the_environment_hook(updated: dict[str, object]) -> None:
    proc = updated["proc"]
    assert isinstance(proc, subprocess.CompletedProcess)
    output = proc.stdout + proc.stderr
    # The tasks' own output (copier renders quietly during an update, so its "Running task"
    # lines would not show; the tasks' prints would) and the environment's files.
    assert HOOK_BANNER not in output and GIT_BANNER not in output
    assert MIGRATION_BANNER not in output  # 0.1.0 -> 0.2.0 does not cross the 0.1.0 migration
    venv_cfg = Path(str(updated["venv_cfg"]))
    assert venv_cfg.stat().st_mtime_ns == updated["venv_mtime"], "the environment was recreated"


# ------------------------------------------------------------------ v0.1.0 -> the envtool layout
@pytest.fixture(scope="module")
def from_v010(
    releases: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """A project of v0.1.0 (tools/envsetup/, src/<pkg>/doctor.py), used as a student would (the
    old tool run, so Python left bytecode beside it) and edited, then updated to the working
    tree's layout (tools/envtool/)."""
    assert releases["prev"] == FIRST_RELEASE[0], "the previous release no longer has the old layout"
    tmp = tmp_path_factory.mktemp("from-v010")
    env = tool_env(tmp)
    project = tmp / "project"
    gen = copier_run(
        "copy", "--trust", "--defaults", "--vcs-ref", str(releases["prev"]),
        "--data", "env_manager=uv", "--data", "ml_framework=none", "--data", "example=none",
        "--data", "ci=none", "--data", "jupyter_kernel=false", "--data", "git_init=true",
        str(releases["repo"]), str(project),
        env=env,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert (project / "tools" / "envsetup" / "__main__.py").is_file()
    assert (project / "src" / "my_ml_project" / "doctor.py").is_file()
    # The student ran the old tool and doctor (bytecode written, as on any machine by default).
    writes = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for cmd in (["make", "env"], ["make", "doctor"]):
        assert run_captured(cmd, cwd=project, env=writes).returncode == 0
    assert list((project / "tools" / "envsetup").rglob("*.pyc"))
    init = project / "src" / "my_ml_project" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + USER_FUNCTION, encoding="utf-8")
    readme = project / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("# My ML Project\n", USER_TITLE + "\n", 1), encoding="utf-8")
    commit(project, "student work")
    upd = copier_run("update", "--trust", "--defaults", cwd=project, env=env)
    assert upd.returncode == 0, upd.stderr
    return {"project": project, "proc": upd, "env": env, "next": releases["next"]}


@pytest.mark.slow
def test_update_from_v010_replaces_the_old_tool(from_v010: dict[str, object]) -> None:
    project = Path(str(from_v010["project"]))
    assert answers_of(project)["_commit"] == from_v010["next"]
    # The old tool and doctor are gone, bytecode and all; the new tool is there.
    assert not (project / "tools" / "envsetup").exists()
    assert not (project / "tools" / "envsetup.json").exists()
    package = project / "src" / "my_ml_project"
    assert not (package / "doctor.py").exists() and not list(package.rglob("doctor*"))
    assert (project / "tools" / "envtool" / "__main__.py").is_file()
    assert sorted(p.name for p in package.iterdir() if p.name != "__pycache__") == [
        "__init__.py", "py.typed"
    ]  # fmt: skip
    # The student's edits are kept.
    assert USER_FUNCTION.strip() in (package / "__init__.py").read_text(encoding="utf-8")
    assert (project / "README.md").read_text(encoding="utf-8").count(USER_TITLE + "\n") == 1
    assert "python3 tools/envtool" in (project / "Makefile").read_text(encoding="utf-8")


@pytest.mark.slow
def test_update_from_v010_then_env_and_doctor_work(from_v010: dict[str, object]) -> None:
    project = Path(str(from_v010["project"]))
    env = from_v010["env"]
    assert isinstance(env, dict)
    made = run_captured(["make", "env"], cwd=project, env=env)
    assert made.returncode == 0 and "Environment ready (uv)" in made.stdout, made.stdout[-3000:]
    for cmd in (["make", "doctor"], ["python3", "tools/envtool", "doctor"]):
        proc = run_captured(cmd, cwd=project, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "Everything looks healthy." in proc.stdout
    # What the update changed is the template's files only; the result file is ignored.
    status = git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert not [line for line in status if "envtool-result" in line or "notes" in line]


# ------------------------------------------------------------------ the 0.1.0 migration
def pre_release_template(repo: Path) -> None:
    """The template as it was before 0.1.0 added `ci` and `jupyter_kernel`: never asked, not
    stored in the answers file, rendering no CI workflow and no kernel."""
    config = repo / "copier.yml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["ci"].update(when=False, default="none")
    data["jupyter_kernel"].update(when=False, default=False)
    data.pop("_migrations", None)
    config.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6))


def test_migration_runs_exactly_when_crossing_its_version(tmp_path: Path) -> None:
    repo = template_repo(tmp_path / "template")
    current_config = (repo / "copier.yml").read_text(encoding="utf-8")
    pre_release_template(repo)
    commit(repo, "pre-release snapshot")  # untagged: copier calls it 0.0.0.post1.dev0+<hash>
    project = tmp_path / "project"
    gen = copier_run(
        "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", "create_env=false", "--data", "git_init=true",
        str(repo), str(project),
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert "ci" not in answers_of(project) and "jupyter_kernel" not in answers_of(project)

    (repo / "copier.yml").write_text(current_config, encoding="utf-8")
    commit(repo, "release 0.1.0", tag="v0.1.0")
    first = copier_run("update", "--trust", "--defaults", cwd=project)
    assert first.returncode == 0, first.stderr
    assert MIGRATION_BANNER in first.stdout
    answers = answers_of(project)
    assert answers["_commit"] == "v0.1.0"
    assert answers["ci"] == "none" and answers["jupyter_kernel"] is False
    # Without the migration, --defaults would have given ci=github and a kernel (ipykernel).
    assert not (project / ".github").exists()
    assert "ipykernel" not in (project / "pyproject.toml").read_text(encoding="utf-8")
    commit(project, "update to 0.1.0")

    with (repo / "template" / "README.md.jinja").open("a", encoding="utf-8") as f:
        f.write("\nA fix from 0.1.1.\n")
    commit(repo, "release 0.1.1", tag="v0.1.1")
    second = copier_run("update", "--trust", "--defaults", cwd=project)
    assert second.returncode == 0, second.stderr
    assert MIGRATION_BANNER not in second.stdout + second.stderr
    assert "Running task" not in second.stderr
    assert answers_of(project)["_commit"] == "v0.1.1"
    assert "A fix from 0.1.1." in (project / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the migration script itself
HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"


def test_set_missing_adds_only_absent_answers(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    original = HEADER + "_commit: v0.0.9\nci: gitlab\nproject_name: Digits\n"
    path.write_text(original, encoding="utf-8")
    added = migration.set_missing(path, {"ci": "none", "jupyter_kernel": False})
    assert added == {"jupyter_kernel": False}
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original)  # appended: header and every answer byte for byte
    assert yaml.safe_load(text) == {
        "_commit": "v0.0.9",
        "ci": "gitlab",  # the user's own answer wins
        "project_name": "Digits",
        "jupyter_kernel": False,
    }
    assert migration.set_missing(path, {"jupyter_kernel": True}) == {}


def test_assignments_are_typed_like_copier_answers() -> None:
    assert migration.parse_assignments(["ci=none", "jupyter_kernel=false", "v=3.12"]) == {
        "ci": "none",
        "jupyter_kernel": False,
        "v": 3.12,
    }
    with pytest.raises(migration.MigrationError, match="KEY=VALUE"):
        migration.parse_assignments(["no-equals-sign"])


def test_migration_cli_explains_a_missing_answers_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "migrations" / "answers.py"), "set-missing",
         str(tmp_path / "nope.yml"), "ci=none"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "not found: run `copier update` in the project folder" in proc.stderr


def test_migration_cli_explains_an_answers_file_that_is_not_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(HEADER + "_commit: v0.0.9\nci: [gitlab\n", encoding="utf-8")
    with pytest.raises(migration.MigrationError, match="is not valid YAML"):
        migration.read_answers(path)
    assert migration.main(["set-missing", str(path), "ci=none"]) == 1
    err = capsys.readouterr().err
    assert f"{path} is not valid YAML (line " in err
    assert "restore it from git and retry" in err
    assert path.read_text(encoding="utf-8").endswith("ci: [gitlab\n")  # left as it was


# ------------------------------------------------------------------ update equals a fresh copy
# The 0.1.0 release (the repository had no tags yet when this test was written). Once releases
# are tagged, "previous" is the newest v* tag before the current commit.
FIRST_RELEASE = ("v0.1.0", "eb3ec8ae6fb49aaad2637755f7d9911ba6bb2b8c")
SCAFFOLDING = {".git"}


def previous_release() -> tuple[str, str]:
    """(tag, commit) of the release before the working tree: the newest v* tag reachable from
    HEAD's parent (so on a freshly tagged release commit it is the one before), else 0.1.0."""
    out = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD^"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode == 0:
        tag = out.stdout.strip()
        return tag, git(ROOT, "rev-parse", f"{tag}^{{commit}}").strip()
    tag, sha = FIRST_RELEASE
    has = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=ROOT, check=False)
    assert has.returncode == 0, f"commit {sha} ({tag}) is missing: clone with full history"
    return FIRST_RELEASE


def next_version(previous: str, config: dict[str, object]) -> str:
    """A version after `previous` that crosses every migration the working tree declares."""
    prev = Version(previous.removeprefix("v"))
    candidates = [Version(f"{prev.major}.{prev.minor}.{prev.micro + 1}")]
    migrations = config.get("_migrations") or []
    assert isinstance(migrations, list)
    candidates += [Version(str(m["version"])) for m in migrations if isinstance(m, dict)]
    return f"v{max(candidates)}"


def tree(project: Path) -> dict[str, bytes]:
    """Every file below `project` (git's own folder aside): its bytes, and a line saying whether
    it is executable (make targets run tools/ scripts); symlinks by target."""
    files = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if rel.parts[0] in SCAFFOLDING or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink():
            files[rel.as_posix()] = b"symlink to " + os.readlink(path).encode()
        else:
            executable = b"(executable)\n" if os.access(path, os.X_OK) else b""
            files[rel.as_posix()] = executable + path.read_bytes()
    return files


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A template repository: the previous release as tagged, and the working tree as the next
    release (every file git would see, uncommitted edits included)."""
    tmp = tmp_path_factory.mktemp("releases")
    repo = tmp / "template"
    repo.mkdir()
    prev_tag, prev_sha = previous_release()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", prev_sha], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    old_config = yaml.safe_load((repo / "copier.yml").read_text(encoding="utf-8"))
    git(repo, "init", "--quiet", "-b", "main")
    commit(repo, f"release {prev_tag}", tag=prev_tag)

    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listed.split("\0")):
        src, dst = ROOT / rel, repo / rel
        if src.is_file() or src.is_symlink():  # a deleted, not yet committed file is skipped
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    new_config = yaml.safe_load((repo / "copier.yml").read_text(encoding="utf-8"))
    next_tag = next_version(prev_tag, new_config)
    commit(repo, f"release {next_tag}", tag=next_tag)
    old_questions = {k for k in old_config if not k.startswith("_")}
    return {"repo": repo, "prev": prev_tag, "next": next_tag, "old_questions": old_questions}


def git_status(repo: Path, *args: str) -> int:
    """The exit status of a git query."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False).returncode


def migrated_answers(since: Version) -> dict[str, object]:
    """The answers copier.yml's `set-missing` migrations after release `since` record."""
    recorded: dict[str, object] = {}
    for step in COPIER_YML.get("_migrations") or []:
        command = [str(c) for c in step["command"]]
        if Version(str(step["version"])) > since and "set-missing" in command:
            recorded |= migration.parse_assignments(command[command.index("set-missing") + 2 :])
    return recorded


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset", [None, *sorted(p.name for p in (ROOT / "presets").glob("*.yml"))]
)
def test_update_from_previous_release_equals_fresh_copy(
    releases: dict[str, object], preset: str | None, tmp_path: Path
) -> None:
    repo, prev, nxt = Path(str(releases["repo"])), str(releases["prev"]), str(releases["next"])
    old_questions = releases["old_questions"]
    assert isinstance(old_questions, set)
    if preset and git_status(repo, "cat-file", "-e", f"{prev}:presets/{preset}"):
        pytest.skip(f"presets/{preset} is new since {prev}: no project of that release to update")
    answers = yaml.safe_load((ROOT / "presets" / preset).read_text()) if preset else {}
    answers = {**answers, "create_env": False, "git_init": True, "author_name": "Ada"}
    # Questions the previous release did not have are answered when updating, as staff would;
    # those left unanswered get the value a migration records (the fresh copy is given it too).
    old = {k: v for k, v in answers.items() if k in old_questions}
    new_only = {k: v for k, v in answers.items() if k not in old_questions}
    recorded = migrated_answers(Version(prev.removeprefix("v")))
    answers = {**{k: v for k, v in recorded.items() if k not in old_questions}, **answers}
    files = {}
    for name, data in (("old", old), ("new_only", new_only), ("all", answers)):
        files[name] = tmp_path / f"{name}.yml"
        files[name].write_text(yaml.safe_dump(data), encoding="utf-8")

    updated, fresh = tmp_path / "updated", tmp_path / "fresh"
    gen = copier_run("copy", "--trust", "--defaults", "--vcs-ref", prev,
                 "--data-file", str(files["old"]), str(repo), str(updated))  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    extra = ["--data-file", str(files["new_only"])] if new_only else []
    upd = copier_run("update", "--trust", "--defaults", *extra, cwd=updated)
    assert upd.returncode == 0, upd.stderr
    gen = copier_run("copy", "--trust", "--defaults", "--vcs-ref", nxt,
                 "--data-file", str(files["all"]), str(repo), str(fresh))  # fmt: skip
    assert gen.returncode == 0, gen.stderr

    assert answers_of(updated)["_commit"] == answers_of(fresh)["_commit"] == nxt
    got, want = tree(updated), tree(fresh)
    for a in (got, want):  # the answers file: same answers; key order is copier's business
        a[".copier-answers.yml"] = yaml.safe_dump(yaml.safe_load(a[".copier-answers.yml"])).encode()
    assert sorted(got) == sorted(want), "the updated project has other files than a fresh copy"
    differ = [rel for rel in want if got[rel] != want[rel]]
    assert not differ, "\n".join(
        f"--- {rel} (updated) vs fresh:\n"
        + "\n".join(
            difflib.unified_diff(
                got[rel].decode(errors="replace").splitlines(),
                want[rel].decode(errors="replace").splitlines(),
                lineterm="",
            )
        )
        for rel in differ
    )


def test_recopy_with_another_answers_file_is_not_refused(template: Path, tmp_path: Path) -> None:
    """`--answers-file` names where a project keeps its answers: the destination check looks
    there (it used to look only for .copier-answers.yml and refuse the project as foreign)."""
    dst = tmp_path / "proj"
    run_copy(
        str(template), dst, data={"create_env": False, "git_init": False}, defaults=True,
        unsafe=True, quiet=True, answers_file=".course-answers.yml",
    )  # fmt: skip
    assert (dst / ".course-answers.yml").is_file()
    assert not (dst / ".copier-answers.yml").exists()
    proc = copier_run(
        "recopy", "--trust", "--defaults", "--overwrite", "--answers-file", ".course-answers.yml",
        "--data", "description=Changed", str(dst), env=env_without_dev_venv(None),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "not a copier-mlops project" not in proc.stderr
    assert "Changed" in (dst / "README.md").read_text(encoding="utf-8")
