"""The generated project's pre-commit config and hygiene: the config is validated by pre-commit
itself, its ruff hooks are run through ruff's own settings resolution to show that they use
pyproject.toml's [tool.ruff], its hygiene hooks leave the generated files as they are, and peers'
checkers (Scientific Python's repo-review, codespell) pass.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import (
    MANAGERS,
    dev_tool,
    tomllib,
)

# ---------------------------------------------------------------- pre-commit


def precommit(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))


def hooks_by_id(config: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {h["id"]: (r["repo"], r.get("rev", ""), h) for r in config["repos"] for h in r["hooks"]}


def test_precommit_config_is_valid(projects: dict[str, Path]) -> None:
    files = [projects[f"{m}-github"] / ".pre-commit-config.yaml" for m in MANAGERS]
    out = subprocess.run(
        [dev_tool("pre-commit"), "validate-config", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # ... and the validation can fail.
    bad = files[0].parent / "bad-pre-commit.yaml"
    bad.write_text(files[0].read_text(encoding="utf-8").replace("    rev:", "    revision:", 1))
    bad_out = subprocess.run(
        [dev_tool("pre-commit"), "validate-config", str(bad)], capture_output=True, check=False
    )
    assert bad_out.returncode != 0


@pytest.mark.parametrize("manager", MANAGERS)
def test_precommit_hooks_per_manager(projects: dict[str, Path], manager: str) -> None:
    config = precommit(projects[f"{manager}-github"])
    for repo in config["repos"]:
        if repo["repo"] != "local":  # local: runs a tool of the project's environment
            assert re.fullmatch(r"v?\d+(\.\d+)+", repo["rev"]), repo  # a release, not a branch
    hooks = hooks_by_id(config)
    for hook in ("trailing-whitespace", "end-of-file-fixer", "check-yaml", "check-toml"):
        assert hooks[hook][0] == "https://github.com/pre-commit/pre-commit-hooks"
    assert hooks["validate-pyproject"][0] == "https://github.com/abravalheri/validate-pyproject"
    assert hooks["ruff-check"][0] == hooks["ruff-format"][0]
    assert hooks["ruff-check"][0] == "https://github.com/astral-sh/ruff-pre-commit"
    assert hooks["ruff-check"][2]["args"] == ["--fix", "--show-fixes"]
    assert hooks["codespell"][0] == "https://github.com/codespell-project/codespell"
    # zizmor audits GitHub workflows: only where there are some.
    assert hooks["zizmor"][0] == "https://github.com/zizmorcore/zizmor-pre-commit"
    assert "zizmor" not in hooks_by_id(precommit(projects[f"{manager}-gitlab"]))
    lock_hooks = {h for h in hooks if h in ("uv-lock", "poetry-lock", "poetry-check")}
    assert (
        lock_hooks
        == {
            "uv": {"uv-lock"},
            "poetry": {"poetry-lock", "poetry-check"},
            "venv": set(),
            "conda": set(),
            "conda-poetry": {"poetry-lock", "poetry-check"},
            "conda-uv": {"uv-lock"},
        }[manager]
    )
    # mypy runs in the project's environment, where the packages' types are.
    mypy = hooks["mypy"]
    assert mypy[0] == "local" and mypy[2]["language"] == "system"
    assert mypy[2]["pass_filenames"] is False  # files come from pyproject.toml's [tool.mypy]
    runner = {"uv": "uv run python", "poetry": "poetry run python"}.get(manager, "python")
    assert mypy[2]["entry"] == f"{runner} -m mypy"
    if manager == "uv":
        assert hooks["uv-lock"][0] == "https://github.com/astral-sh/uv-pre-commit"
    if manager == "poetry":
        assert hooks["poetry-check"][2]["args"] == ["--lock"]
        ids = [h["id"] for r in config["repos"] for h in r["hooks"]]
        assert ids.index("poetry-lock") < ids.index("poetry-check")  # relock, then verify


def ruff_requirement(pyproject: dict[str, Any]) -> Requirement:
    dev = pyproject.get("dependency-groups", {}).get("dev")
    if dev is None:  # poetry: `ruff = ">=0.6"`
        spec = pyproject["tool"]["poetry"]["group"]["dev"]["dependencies"]["ruff"]
        dev = [f"ruff{spec}"]
    return next(Requirement(r) for r in dev if Requirement(r).name == "ruff")


# What ruff-pre-commit's hooks run (its .pre-commit-hooks.yaml), before the configured args.
HOOK_ENTRIES = {
    "ruff-check": ["check", "--force-exclude"],
    "ruff-format": ["format", "--force-exclude"],
}


@pytest.mark.parametrize("manager", MANAGERS)
def test_precommit_ruff_uses_pyproject_settings(projects: dict[str, Path], manager: str) -> None:
    project = projects[f"{manager}-github"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    hooks = hooks_by_id(precommit(project))
    # The hook's ruff is one the project's own dev dependency allows ...
    rev = hooks["ruff-check"][1].lstrip("v")
    assert ruff_requirement(pyproject).specifier.contains(rev), (rev, ruff_requirement(pyproject))
    settings = pyproject["tool"]["ruff"]
    # No target-version of its own (repo-review's RF002): ruff reads requires-python's.
    assert "target-version" not in settings
    target = pyproject["project"]["requires-python"].removeprefix(">=")
    ruff = dev_tool("ruff")
    for hook_id in HOOK_ENTRIES:
        args = hooks[hook_id][2].get("args", [])
        # ... it passes no setting of its own (only behaviour flags) ...
        assert set(args) <= {"--fix", "--show-fixes", "--exit-non-zero-on-fix"}, args
    # ... and, run the way pre-commit runs it, ruff resolves pyproject.toml's [tool.ruff]:
    module = next((project / "src").glob("*/__init__.py"))
    check = [ruff, *HOOK_ENTRIES["ruff-check"], *hooks["ruff-check"][2].get("args", [])]
    out = subprocess.run(
        [*check, "--show-settings", str(module)], cwd=project, capture_output=True, text=True
    ).stdout
    assert f'Settings path: "{project / "pyproject.toml"}"' in out
    for section, width in (("linter", "line_length"), ("formatter", "line_width")):
        assert re.search(rf"^{section}\.{width} = {settings['line-length']}$", out, re.M), out
        assert re.search(rf"^{section}\.unresolved_target_version = {target}$", out, re.M)
    # The format hook: a 95-character line is fine at line-length 100, too long at ruff's default.
    probe = module.with_name("_line_length_probe.py")
    probe.write_text(
        "result = dict(alpha=1, beta=2, gamma=3, delta=4, epsilon=5, zeta=6, eta=7, theta=8, iota=9)\n"
    )
    try:
        fmt = [ruff, *HOOK_ENTRIES["ruff-format"], *hooks["ruff-format"][2].get("args", [])]
        assert subprocess.run([*fmt, "--check", str(probe)], cwd=project).returncode == 0
        isolated = subprocess.run([*fmt, "--isolated", "--check", str(probe)], cwd=project)
        assert isolated.returncode == 1  # without pyproject.toml it would reformat
    finally:
        probe.unlink()


# The hygiene hooks of .pre-commit-config.yaml, as their console scripts (pre-commit-hooks from
# PyPI: pre-commit itself would clone them from GitHub, which this machine cannot reach).
HYGIENE = [
    ["trailing-whitespace-fixer"],
    ["end-of-file-fixer"],
    ["mixed-line-ending"],
    ["check-merge-conflict"],
]


@pytest.mark.parametrize("manager", MANAGERS)
def test_generated_project_passes_its_hygiene_hooks(
    projects: dict[str, Path], manager: str
) -> None:
    """A student's first `pre-commit run --all-files` must not rewrite generated files."""
    project = projects[f"{manager}-github"]
    config = hooks_by_id(precommit(project))
    if not (project / ".git").exists():  # check-merge-conflict asks git where it is
        subprocess.run(["git", "init", "-q", str(project)], check=True)
    # What pre-commit would hand the hooks: the files git tracks (ignored caches are not).
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "pyproject.toml" in files and not any(f.startswith(".ruff_cache") for f in files)
    before = {f: (project / f).read_bytes() for f in files}
    by_suffix = {
        "check-yaml": [f for f in files if f.endswith((".yml", ".yaml"))],
        "check-toml": [f for f in files if f.endswith(".toml")],
        "debug-statement-hook": [f for f in files if f.endswith(".py")],
    }
    runs = [*HYGIENE, ["check-yaml"], ["check-toml"], ["debug-statement-hook"]]
    for cmd in runs:
        hook_id = {
            "trailing-whitespace-fixer": "trailing-whitespace",
            "debug-statement-hook": "debug-statements",
        }.get(cmd[0], cmd[0])
        assert hook_id in config, hook_id  # only what the config runs
        targets = by_suffix.get(cmd[0], files)
        out = subprocess.run(
            [dev_tool(cmd[0]), *targets], cwd=project, capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, (cmd, out.stdout + out.stderr)
    assert {f: (project / f).read_bytes() for f in files} == before


# ---------------------------------------------------------------- peers' checkers: repo-review, codespell
# The checks a generated project declines, by CI choice; the reasons are in its pyproject.toml.
DECLINED = {"PY004", "PY007", "PC140", "PC170", "PC180"}


DECLINED_WITHOUT_GITHUB = DECLINED | {"GH100", "PC901", "PC902", "PC903"}


# One project per CI choice, and the variants that change the checked files (mypy overrides).
REVIEWED = ["uv-github", "poetry-gitlab", "none", "venv-github-torch-index", "uv-github-noexample"]


def repo_review(*projects: Path) -> dict[str, dict[str, Any]]:
    """Scientific Python's repo-review (sp-repo-review's checks), as JSON: {folder name: report}."""
    proc = subprocess.run(
        [dev_tool("repo-review"), "--format", "json", *map(str, projects)],
        capture_output=True,
        text=True,
        check=False,
    )
    reports: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    if len(projects) == 1:  # one package: its report itself
        reports = {projects[0].name: reports}
    return reports


def test_generated_projects_pass_repo_review(projects: dict[str, Path], tmp_path: Path) -> None:
    reports = repo_review(*(projects[name] for name in REVIEWED))
    for name in REVIEWED:
        project = projects[name]
        checks = reports[project.name]["checks"]
        failed = {code: c["description"] for code, c in checks.items() if c["result"] is False}
        assert not failed, (name, failed)
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        declined = pyproject["tool"]["repo-review"]["ignore"]
        expected = DECLINED if "-github" in name else DECLINED_WITHOUT_GITHUB
        if name.startswith("poetry"):  # Poetry's own dev group table, not [dependency-groups]
            expected = expected | {"PP006"}
        assert set(declined) == expected, name
        assert all(declined[code] for code in declined)  # each with its reason ...
        readme = (project / "README.md").read_text(encoding="utf-8")
        section = readme.split("### Scientific Python's repo-review", 1)[1].split("\n#", 1)[0]
        listed = set(re.findall(r"`([A-Z]+\d+)`", section))
        assert listed == expected, name  # ... and the same list, with reasons, in the README
        for check in ("PP302", "PP304", "PP305", "PP306", "PP309", "MY101", "MY104", "PC191"):
            assert checks[check]["result"] is True, (name, check)  # strictness: passed, not skipped
    # The check can fail: the same project without mypy's strict mode and pytest's strict xfail.
    bare = tmp_path / "bare"
    shutil.copytree(projects["uv-github"], bare)
    text = (bare / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace("\nstrict = true\n", "\n").replace("\nxfail_strict = true\n", "\n")
    (bare / "pyproject.toml").write_text(text, encoding="utf-8")
    checks = repo_review(bare)["bare"]["checks"]
    assert {code for code, c in checks.items() if c["result"] is False} == {"MY101", "PP305"}


def test_generated_projects_pass_codespell(projects: dict[str, Path]) -> None:
    """The spelling hook passes on what the template writes (every file, not only git's)."""
    for name in REVIEWED:
        proc = subprocess.run(
            [dev_tool("codespell")], cwd=projects[name], capture_output=True, text=True
        )
        assert proc.returncode == 0, (name, proc.stdout + proc.stderr)
