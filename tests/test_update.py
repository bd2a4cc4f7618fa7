"""`copier update` across tagged releases of the template, with the real copier CLI.

Each test builds a temporary git copy of the working tree (so uncommitted template edits count),
tags releases in it, generates a project, changes the template and updates the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migrations import answers as migration
from tests.conftest import COPIER, ROOT, run_captured

DEV_BIN = Path(sys.executable).parent
IDENTITY = ["-c", "user.name=Course Staff", "-c", "user.email=staff@example.org"]
HOOK_BANNER = "copier-mlops: creating the"  # first line the environment hook prints
GIT_BANNER = "copier-mlops: git repository"  # first line the git-init task prints
MIGRATION_BANNER = "copier-mlops migration 0.1.0"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{out.stderr}"
    return out.stdout


def commit(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    if tag:
        git(repo, "tag", tag)


def template_repo(dst: Path) -> Path:
    """The template's files (as copier reads them from a clone) in a fresh git repository."""
    dst.mkdir(parents=True)
    for name in ("copier.yml", "template", "hooks", "migrations", "extensions"):
        src = ROOT / name
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(src, dst / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(src, dst / name)
    git(dst, "init", "--quiet", "-b", "main")
    return dst


def tool_env(tmp: Path) -> dict[str, str]:
    """The caller's environment with only uv from the dev venv on PATH (no dev python/pip)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "uv").exists():
        (bin_dir / "uv").symlink_to(DEV_BIN / "uv")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != DEV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        PATH=os.pathsep.join([str(bin_dir), *path]),
        UV_PYTHON_DOWNLOADS="never",  # only interpreters that exist here
        JUPYTER_DATA_DIR=str(tmp / "jupyter"),  # a registered kernel stays in the test folder
    )
    return env


def copier(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = run_captured([COPIER, *args], cwd=cwd, env=env)
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return proc


def answers_of(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


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
    gen = copier(
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

    upd = copier("update", "--trust", "--defaults", cwd=project, env=env)
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
    gen = copier(
        "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", "create_env=false", "--data", "git_init=true",
        str(repo), str(project),
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert "ci" not in answers_of(project) and "jupyter_kernel" not in answers_of(project)

    (repo / "copier.yml").write_text(current_config, encoding="utf-8")
    commit(repo, "release 0.1.0", tag="v0.1.0")
    first = copier("update", "--trust", "--defaults", cwd=project)
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
    second = copier("update", "--trust", "--defaults", cwd=project)
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
