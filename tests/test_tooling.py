"""The generated project's own tooling: CI workflows, pre-commit config, the doctor (fast parts).

CI files are validated against the GitHub Actions / GitLab CI JSON schemas that check-jsonschema
ships (offline) and read for the manager's install-from-lock, ruff and pytest steps; GitHub
workflows, the template repository's own included, also pass actionlint. The
pre-commit config is validated by pre-commit itself, and its ruff hooks are run through ruff's
own settings resolution to show that they use pyproject.toml's [tool.ruff].

Jupyter kernel and `make doctor` on real environments, made by the real `copier copy --trust`.

One uv project (with jupyter_kernel) and one venv project; each doctor test walks one project
through healthy -> broken -> repaired, so the projects are created once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import (
    DEV_BIN,
    MANAGERS,
    ROOT,
    WINDOWS,
    answer_conda_compare,
    copier_copy,
    dev_tool,
    env_without_dev_venv,
    find_python,
    install_conda_stand_in,
    link_dev_tool,
    posix_only,
    read_result,
    render,
    stand_in_log,
    timed,
    tomllib,
    tool_bin,
    venv_python,
)

INSTALL_FROM_LOCK = {
    "uv": ["uv sync --locked"],
    "poetry": ["poetry check --lock", "poetry install"],
    "venv": ["pip install -r requirements.lock", "pip install -r requirements-dev.txt"],
    "conda": [],  # GitHub: setup-micromamba's environment-file; GitLab: micromamba create
    # The project's own set-up: conda creates the env, then Poetry/uv install into it, guarded.
    "conda-poetry": ["tools/envtool setup --no-input"],
    "conda-uv": ["tools/envtool setup --no-input"],
}
HYBRIDS = ("conda-poetry", "conda-uv")


# The template repository's own CI (.github/workflows at the root, not in template/).
OWN_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def check_jsonschema(
    schema: str, files: list[Path], *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dev_tool("check-jsonschema"), "--builtin-schema", schema, *extra, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def projects(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One render per (manager, ci) plus variants: no Dockerfile; pytorch with a private index."""
    out = tmp_path_factory.mktemp("tooling")
    answers: dict[str, dict[str, Any]] = {}
    for manager in MANAGERS:
        for ci in ("github", "gitlab"):
            answers[f"{manager}-{ci}"] = {"env_manager": manager, "ci": ci}
    answers["uv-github-nodocker"] = {"env_manager": "uv", "ci": "github", "dockerfile": False}
    answers["venv-gitlab-nodocker"] = {"env_manager": "venv", "ci": "gitlab", "dockerfile": False}
    for ci in ("github", "gitlab"):
        answers[f"venv-{ci}-torch-index"] = {
            "env_manager": "venv",
            "ci": ci,
            "ml_framework": "pytorch",
            "package_index_url": "https://pypi.example.org/simple",
        }
    answers["none"] = {"env_manager": "uv", "ci": "none"}
    answers["uv-github-noexample"] = {"env_manager": "uv", "ci": "github", "example": "none"}
    return {
        name: render(template, out / name, project_name="Tool Box", python_version="3.12", **a)
        for name, a in answers.items()
    }


def github_workflows(projects: dict[str, Path]) -> list[Path]:
    """Every GitHub workflow we ship: each generated project's, then the template's own."""
    generated = [p / ".github/workflows/ci.yml" for n, p in projects.items() if "-github" in n]
    assert len(generated) == len(MANAGERS) + 3 and OWN_WORKFLOWS
    return generated + OWN_WORKFLOWS


def actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    # -shellcheck= / -pyflakes=: the same checks on every machine (neither tool is installable
    # from the package index, and GitHub's runners have shellcheck).
    return subprocess.run(
        [dev_tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def workflow(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))


def gitlab(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- CI: schemas


def test_github_workflows_validate_against_schema(projects: dict[str, Path]) -> None:
    out = check_jsonschema("vendor.github-workflows", github_workflows(projects))
    assert out.returncode == 0, out.stdout + out.stderr


def test_github_workflows_pass_actionlint(projects: dict[str, Path], tmp_path: Path) -> None:
    out = actionlint(github_workflows(projects))
    assert out.returncode == 0, out.stdout + out.stderr
    # ... and actionlint can fail here: a matrix key that does not exist, an unknown runner.
    text = OWN_WORKFLOWS[0].read_text(encoding="utf-8")
    assert "${{ matrix.python }}" in text and "runs-on: ubuntu-24.04" in text
    broken = tmp_path / OWN_WORKFLOWS[0].name
    broken.write_text(
        text.replace("${{ matrix.python }}", "${{ matrix.pyhton }}").replace(
            "runs-on: ubuntu-24.04", "runs-on: ubuntu-24.40"
        ),
        encoding="utf-8",
    )
    out = actionlint([broken])
    assert out.returncode == 1, out.stdout + out.stderr
    assert "pyhton" in out.stdout and "ubuntu-24.40" in out.stdout, out.stdout


def test_gitlab_ci_validates_against_schema(projects: dict[str, Path]) -> None:
    files = [p / ".gitlab-ci.yml" for n, p in projects.items() if "-gitlab" in n]
    assert len(files) == len(MANAGERS) + 2
    out = check_jsonschema("vendor.gitlab-ci", files, "--data-transform", "gitlab-ci")
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_rejects_a_broken_workflow(projects: dict[str, Path], tmp_path: Path) -> None:
    """The validation above can fail: a job without runs-on, a GitLab job with a bad key."""
    text = (projects["uv-github"] / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"), "utf-8")
    assert check_jsonschema("vendor.github-workflows", [broken]).returncode != 0
    text = (projects["uv-gitlab"] / ".gitlab-ci.yml").read_text(encoding="utf-8")
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(text.replace("  timeout: 30 minutes", "  timeout: [30]"), "utf-8")
    out = check_jsonschema("vendor.gitlab-ci", [broken], "--data-transform", "gitlab-ci")
    assert out.returncode != 0


# ---------------------------------------------------------------- CI: content


def steps_text(job: dict[str, Any]) -> list[str]:
    """Each step as one string (`uses` + `with` + `run`), in order."""
    return [json.dumps(step) if "uses" in step else step.get("run", "") for step in job["steps"]]


def index_of(steps: list[str], needle: str) -> int:
    hits = [i for i, s in enumerate(steps) if needle in s]
    assert hits, f"no step with {needle!r} in {steps}"
    return hits[0]


@pytest.mark.parametrize("manager", MANAGERS)
def test_github_workflow_installs_from_lock_then_lints_and_tests(
    projects: dict[str, Path], manager: str
) -> None:
    flow = workflow(projects[f"{manager}-github"])
    test = flow["jobs"]["test"]
    steps = steps_text(test)
    setup = {
        "uv": "astral-sh/setup-uv@",
        "poetry": "actions/setup-python@",
        "venv": "actions/setup-python@",
        "conda": "mamba-org/setup-micromamba@",
        "conda-poetry": "conda-incubator/setup-miniconda@",
        "conda-uv": "conda-incubator/setup-miniconda@",
    }[manager]
    setup_step = next(s for s in test["steps"] if setup in s.get("uses", ""))
    # The cache each manager's docs recommend.
    cache = {
        "uv": ("enable-cache", True),
        "poetry": ("cache", "poetry"),
        "venv": ("cache", "pip"),
        "conda": ("cache-environment", True),
        "conda-poetry": ("conda-remove-defaults", "true"),  # conda-forge only
        "conda-uv": ("conda-remove-defaults", "true"),
    }[manager]
    assert setup_step["with"][cache[0]] == cache[1]
    if manager in HYBRIDS:
        # The same Miniforge action, commit and version as the template's own CI.
        own = (ROOT / ".github" / "workflows" / "tests.yml").read_text(encoding="utf-8")
        assert setup_step["uses"] in own
        assert setup_step["with"]["channels"] == "conda-forge"
        assert f"miniforge-version: {setup_step['with']['miniforge-version']}" in own
        assert test["defaults"]["run"]["shell"] == "bash -el {0}"  # where `conda` works
        install_step = next(s for s in test["steps"] if "tools/envtool setup" in s.get("run", ""))
        if manager == "conda-uv":
            assert install_step["env"] == {"UV_LOCKED": "1"}  # uv.lock is checked, not rewritten
    elif manager == "conda":
        assert setup_step["with"]["environment-file"] == "environment.yml"
        assert test["defaults"]["run"]["shell"] == "bash -el {0}"  # activates the env
    else:
        assert setup_step["with"]["python-version"] == "3.12"
    installs = [index_of(steps, cmd) for cmd in INSTALL_FROM_LOCK[manager]]
    install = max(installs) if installs else index_of(steps, "setup-micromamba")
    if manager == "poetry":
        assert steps.index(next(s for s in steps if "pipx install" in s)) < installs[0]
    lint = index_of(steps, "-m ruff check")
    fmt = index_of(steps, "-m ruff format --check")
    types = index_of(steps, "-m mypy")
    tests = index_of(steps, "-m pytest")
    assert install < lint < fmt < types < tests
    assert flow["jobs"]["docker"]["needs"] == "test"
    build = next(
        s
        for s in flow["jobs"]["docker"]["steps"]
        if "docker/build-push-action" in s.get("uses", "")
    )
    assert build["with"]["push"] is False and build["with"]["context"] == "."
    run = flow["jobs"]["docker"]["steps"][-1]["run"]
    assert run == 'docker run --rm tool-box:ci python -c "import tool_box"'  # not a training run


def test_github_workflow_pins_every_action_to_a_release_commit(projects: dict[str, Path]) -> None:
    for path in github_workflows(projects):
        text = path.read_text(encoding="utf-8")
        uses = re.findall(r"uses:\s*(\S+)(.*)", text)
        assert uses
        for ref, comment in uses:
            # A full commit SHA (tags can move) and the release it is, for people and Dependabot.
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), (path, ref, comment)
        assert "-latest" not in text and "ubuntu-24.04" in text  # fixed runner images


def test_own_ci_runs_the_readme_tests_everywhere_with_real_conda() -> None:
    """The template's CI: every python_version choice on Linux, both ends on macOS and Windows,
    conda from Miniforge (conda-forge only), the README's test command, images built as root."""
    from tests.test_readme import readme_command

    flow = yaml.safe_load(OWN_WORKFLOWS[0].read_text(encoding="utf-8"))
    assert flow["permissions"] == {"contents": "read"} and flow["concurrency"]["group"]
    assert all(job["timeout-minutes"] <= 90 for job in flow["jobs"].values())
    copier_yml = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    pythons = copier_yml["python_version"]["choices"]
    test = flow["jobs"]["test"]
    matrix = test["strategy"]["matrix"]
    cells = {(os_, py) for os_ in matrix["os"] for py in matrix["python"]}
    cells |= {(cell["os"], cell["python"]) for cell in matrix["include"]}
    for os_prefix in ("ubuntu-", "macos-", "windows-"):
        ran = sorted((py for os_, py in cells if os_.startswith(os_prefix)), key=Version)
        assert ran[0] == pythons[0] and ran[-1] == pythons[-1], (os_prefix, ran)
    assert sorted(py for os_, py in cells if os_.startswith("ubuntu-")) == pythons
    steps = test["steps"]
    conda = next(s for s in steps if "conda-incubator/setup-miniconda@" in s.get("uses", ""))
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+", conda["with"]["miniforge-version"])
    assert conda["with"]["channels"] == "conda-forge"
    assert conda["with"]["conda-remove-defaults"] == "true"
    assert conda["with"]["activate-environment"] == ""  # `python` stays the matrix Python
    setup_python = next(s for s in steps if "actions/setup-python@" in s.get("uses", ""))
    assert setup_python["with"]["cache"] == "pip"
    assert setup_python["with"]["python-version"].splitlines()[-1] == "${{ matrix.python }}"
    assert steps.index(conda) < steps.index(setup_python)  # setup-python's python comes first
    command = readme_command("test-command")
    runs = {s.get("if"): s["run"] for s in steps if "-m pytest" in s.get("run", "")}
    assert runs == {
        "runner.os != 'Windows'": command,
        "runner.os == 'Windows'": command.replace("python3 ", "python ").replace(
            ".venv/bin/", ".venv\\Scripts\\"
        ),
    }
    images = flow["jobs"]["images"]
    assert images["runs-on"].startswith("ubuntu-")
    assert any(
        "apt-get install" in s.get("run", "") and "buildah" in s["run"] for s in images["steps"]
    )
    assert images["steps"][-1]["run"].startswith("sudo ")  # debootstrap and buildah need root
    assert images["steps"][-1]["run"].endswith("-m pytest -m slow tests/test_docker.py")


def test_github_workflow_versions_and_indexes(projects: dict[str, Path]) -> None:
    uv = workflow(projects["uv-github"])
    setup_uv = next(s for s in uv["jobs"]["test"]["steps"] if "setup-uv" in s.get("uses", ""))
    assert re.fullmatch(r"\d+\.\d+\.\d+", setup_uv["with"]["version"])
    poetry = workflow(projects["poetry-github"])
    assert any(
        re.search(r'pipx install "poetry==\d+\.\d+\.\d+"', s.get("run", ""))
        for s in poetry["jobs"]["test"]["steps"]
    )
    conda = workflow(projects["conda-github"])
    micromamba = next(
        s for s in conda["jobs"]["test"]["steps"] if "setup-micromamba" in s.get("uses", "")
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+", micromamba["with"]["micromamba-version"])
    # pip freeze drops index options: the workflow brings back the private and PyTorch indexes.
    torch = workflow(projects["venv-github-torch-index"])
    assert torch["env"] == {
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
        "PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cpu",
    }
    assert "env" not in workflow(projects["venv-github"])
    assert "docker" not in workflow(projects["uv-github-nodocker"])["jobs"]


@pytest.mark.parametrize("manager", MANAGERS)
def test_gitlab_ci_installs_from_lock_then_lints_and_tests(
    projects: dict[str, Path], manager: str
) -> None:
    ci = gitlab(projects[f"{manager}-gitlab"])
    job = ci["test"]
    script = job["script"]
    text = "\n".join(job.get("before_script", []) + script)
    installs = [index_of(script, c) for c in INSTALL_FROM_LOCK[manager]]
    install = max(installs) if installs else index_of(script, "micromamba create")
    if manager == "conda":
        assert "--file environment.yml" in script[install]
    lint = index_of(script, "-m ruff check")
    fmt = index_of(script, "-m ruff format --check")
    types = index_of(script, "-m mypy")
    tests = index_of(script, "-m pytest")
    assert install < lint < fmt < types < tests
    key_files = {f for c in job["cache"] for f in c["key"]["files"]}
    assert key_files & {"uv.lock", "poetry.lock", "requirements.lock", "environment.yml"}
    image = job["image"]
    expected = {
        "uv": r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+-python3\.12-\S+",
        "poetry": r"python:3\.12-slim-\w+",
        "venv": r"python:3\.12-slim-\w+",
        "conda": r"mambaorg/micromamba:\d+\.\d+\.\d+",
        "conda-poetry": r"condaforge/miniforge3:\d+\.\d+\.\d+-\d+",
        "conda-uv": r"condaforge/miniforge3:\d+\.\d+\.\d+-\d+",
    }[manager]
    assert re.fullmatch(expected, image), image
    if manager == "poetry":
        assert re.search(r'pip install "poetry==\d+\.\d+\.\d+"', text)
    assert ci["stages"] == ["test", "build"]
    docker = ci["docker-build"]
    assert re.fullmatch(r"docker:\d+\.\d+\.\d+", docker["image"])
    assert docker["services"] == [docker["image"] + "-dind"]
    assert any(line.startswith("docker build") for line in docker["script"])
    assert docker["script"][-1].endswith('python -c "import tool_box"')


def test_gitlab_ci_variants(projects: dict[str, Path]) -> None:
    ci = gitlab(projects["venv-gitlab-torch-index"])
    assert ci["test"]["variables"]["PIP_INDEX_URL"] == "https://pypi.example.org/simple"
    assert ci["test"]["variables"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    plain = gitlab(projects["venv-gitlab-nodocker"])
    assert "docker-build" not in plain and plain["stages"] == ["test"]
    assert "PIP_INDEX_URL" not in plain["test"]["variables"]


def test_one_ci_system_at_a_time(projects: dict[str, Path]) -> None:
    none = projects["none"]
    assert not (none / ".github").exists() and not (none / ".gitlab-ci.yml").exists()
    assert not (projects["uv-github"] / ".gitlab-ci.yml").exists()
    assert not (projects["uv-gitlab"] / ".github").exists()
    assert "## Continuous integration" not in (none / "README.md").read_text(encoding="utf-8")


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


# ---------------------------------------------------------------- lock refresh (Dependabot, Renovate)

LOCK_ECOSYSTEM = {"uv": "uv", "poetry": "pip", "venv": "pip", "conda": "conda", "conda-uv": "uv",
                  "conda-poetry": "pip"}  # fmt: skip


def dependabot(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".github/dependabot.yml").read_text(encoding="utf-8"))


def test_dependabot_and_renovate_validate_against_their_schemas(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    github = [p / ".github/dependabot.yml" for n, p in projects.items() if "-github" in n]
    gitlab_ = [p / "renovate.json" for n, p in projects.items() if "-gitlab" in n]
    assert len(github) == len(MANAGERS) + 3 and len(gitlab_) == len(MANAGERS) + 2
    for schema, files in (("vendor.dependabot", github), ("vendor.renovate", gitlab_)):
        out = check_jsonschema(schema, files)
        assert out.returncode == 0, out.stdout + out.stderr
    # ... and the checks can fail: an ecosystem Dependabot does not know, a wrong Renovate type.
    bad = tmp_path / "dependabot.yml"
    bad.write_text(github[0].read_text(encoding="utf-8").replace("github-actions", "gh-actions"))
    assert check_jsonschema("vendor.dependabot", [bad]).returncode != 0
    bad_json = tmp_path / "renovate.json"
    bad_json.write_text(gitlab_[0].read_text(encoding="utf-8").replace("true", '"yes"'))
    assert check_jsonschema("vendor.renovate", [bad_json]).returncode != 0


@pytest.mark.parametrize("manager", MANAGERS)
def test_dependabot_refreshes_the_lock_and_the_pinned_actions(
    projects: dict[str, Path], manager: str
) -> None:
    updates = {
        u["package-ecosystem"]: u for u in dependabot(projects[f"{manager}-github"])["updates"]
    }
    # A hybrid's two halves: its tool's lock and conda's environment.yml.
    locks = {LOCK_ECOSYSTEM[manager]} | ({"conda"} if manager in HYBRIDS else set())
    assert set(updates) == locks | {"github-actions", "pre-commit", "docker"}
    assert all(u["directory"] == "/" and u["schedule"]["interval"] for u in updates.values())
    nodocker = dependabot(projects["uv-github-nodocker"])["updates"]
    assert "docker" not in {u["package-ecosystem"] for u in nodocker}
    assert not (projects[f"{manager}-github"] / "renovate.json").exists()
    assert not (projects[f"{manager}-gitlab"] / ".github").exists()


@pytest.mark.parametrize("manager", MANAGERS)
def test_renovate_refreshes_the_lock(projects: dict[str, Path], manager: str) -> None:
    config = json.loads((projects[f"{manager}-gitlab"] / "renovate.json").read_text("utf-8"))
    assert config["extends"] == ["config:recommended"] and config["pre-commit"]["enabled"]
    assert config["minimumReleaseAge"] == "7 days"  # Dependabot's cooldown (zizmor checks that)
    # uv.lock and poetry.lock: lock file maintenance; requirements.lock: its pins are bumped.
    assert ("lockFileMaintenance" in config) == (manager in ("uv", "poetry", *HYBRIDS))
    patterns = config.get("pip_requirements", {}).get("managerFilePatterns", [])
    assert any("requirements\\.lock" in p for p in patterns) == (manager == "venv")


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


# ---------------------------------------------------------------- the doctor (no environment)


def test_doctor_without_an_environment(projects: dict[str, Path], tmp_path: Path) -> None:
    """Run before any env exists (as `make doctor` would, with python3): names the problem."""
    project = projects["uv-github"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    link_dev_tool(bin_dir, "uv")
    env = {
        **os.environ,
        # The system's own folders only (Windows: System32).
        "PATH": os.pathsep.join(
            [str(bin_dir), os.path.join(os.environ["SYSTEMROOT"], "System32")]
            if WINDOWS
            else [str(bin_dir), "/usr/bin", "/bin"]
        ),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(
        [sys.executable, "tools/envtool", "doctor"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "FAIL  the project's environment does not exist" in text
    assert "fix: uv sync" in text
    assert "FAIL  uv.lock is missing" in text and "fix: uv lock" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("manager", MANAGERS)
def test_doctor_reads_the_declared_requirements(projects: dict[str, Path], manager: str) -> None:
    """The project's own probe (with the modules its tool has) reads pyproject.toml (and a venv
    project's requirements files) with a real TOML parser: runtime and dev requirements of every
    manager's layout."""
    from envtool.base import manager_class

    project = projects[f"{manager}-github"]
    spec = importlib.util.spec_from_file_location(
        "project_probe", project / "tools" / "envtool" / "probe.py"
    )
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    files = [f for f in manager_class(manager).requirement_files if (project / f).is_file()]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    declared = probe.declared_requirements(project, pyproject, files)
    runtime = [r for group, r in declared if group == "runtime"]
    dev = [r for group, r in declared if group == "dev"]
    assert "numpy>=1.26" in runtime
    assert any(d.startswith("pytest") for d in dev) and any(d.startswith("ruff") for d in dev)


@posix_only("a #! script standing in for conda")
def test_doctor_conda_drift_with_recording_stand_in(
    projects: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """environment.yml against the env: conda's own `conda compare` (its parser and MatchSpec),
    each of its findings a problem with the fix; no environment: it says so first."""
    from envtool import doctor
    from envtool.base import manager_for

    project = projects["conda-github"]
    root = tmp_path / "stand-in"
    install_conda_stand_in(root / "bin")
    monkeypatch.setenv("PATH", str(root / "bin"))
    for var in ("CONDA_EXE", "MAMBA_EXE", "CONDA_PREFIX", "VIRTUAL_ENV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STANDIN_ROOT", str(root))
    # conda's own answers: its messages as JSON, exit status 0 on success, 1 on a difference
    answer_conda_compare(root, json.dumps(["Success. All the packages in the specification file are "
                                           "present in the environment with matching version and build string."]), 0)  # fmt: skip
    report = doctor.Report()
    manager = manager_for(doctor.Config.load(project))
    manager.check_lock(report, None)
    assert report.problems == [], report.problems
    assert stand_in_log(root)[-1]["args"] == [
        "compare", "--json", "-n", "tool-box", "environment.yml"
    ]  # fmt: skip
    answer_conda_compare(root, json.dumps([
        "numpy not found",
        "python found but mismatch. Specification pkg: python=3.12, Running pkg: python==3.11.9=h0_0",
    ]), 1)  # fmt: skip
    report = doctor.Report()
    manager.check_lock(report, None)
    whats = [what for what, _ in report.problems]
    assert any(w.startswith("numpy not found") for w in whats), whats
    assert any("python found but mismatch" in w and "3.11.9" in w for w in whats), whats
    assert all("make env" in fix for _, fix in report.problems)
    # The whole doctor: no environment named tool-box -> that problem, and the comparison.
    capsys.readouterr()
    assert doctor.doctor(project) == 1
    out = capsys.readouterr().out
    assert "FAIL  the conda environment tool-box does not exist" in out
    assert "FAIL  numpy not found" in out and "Traceback" not in out


# ---------------------------------------------------------------- Jupyter kernel (fast parts)


def test_jupyter_kernel_default_follows_the_example(projects: dict[str, Path]) -> None:
    """On by default with the MNIST starter (notebooks), off without it; ipykernel follows."""
    from envtool.base import Config

    with_example = projects["uv-github"]
    without = projects["uv-github-noexample"]
    for project, wanted in ((with_example, True), (without, False)):
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        dev = [Requirement(r).name for r in pyproject["dependency-groups"]["dev"]]
        assert ("ipykernel" in dev) is wanted
        readme = (project / "README.md").read_text(encoding="utf-8")
        assert ("## Notebooks: the Jupyter kernel" in readme) is wanted
        config = Config.load(project)
        assert config.jupyter_kernel is wanted and config.project_name == "Tool Box"
    poetry = tomllib.loads((projects["poetry-github"] / "pyproject.toml").read_text("utf-8"))
    assert "ipykernel" in poetry["tool"]["poetry"]["group"]["dev"]["dependencies"]
    conda = yaml.safe_load((projects["conda-github"] / "environment.yml").read_text("utf-8"))
    assert any(str(d).startswith("ipykernel") for d in conda["dependencies"])


def test_register_kernel_without_ipykernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clear error naming the cause and the fix, and no half-written kernel spec."""
    from envtool.base import ToolError
    from envtool.kernel import register_kernel

    subprocess.run([dev_tool("uv"), "venv", "-q", str(tmp_path / "bare")], check=True)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ToolError) as caught:
        register_kernel(venv_python(tmp_path / "bare"), "tool-box", "Tool Box (uv)")
    assert caught.value.what == "ipykernel is not installed in the environment"
    assert "make env" in caught.value.fix and "--name tool-box" in caught.value.fix
    assert not (tmp_path / "data").exists()
    with pytest.raises(ToolError, match="cannot name a Jupyter kernel"):
        register_kernel(venv_python(tmp_path / "bare"), "Bad Name", "x")


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


# ---------------------------------------------------------------- peers' checkers: repo-review, zizmor, codespell
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


def zizmor(*paths: Path) -> list[dict[str, Any]]:
    """zizmor's findings (default persona, offline: no GitHub API) on workflows and dependabot.yml."""
    proc = subprocess.run(
        [dev_tool("zizmor"), "--offline", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 10, 11, 12, 13, 14), proc.stderr  # 10+: findings' severity
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def test_zizmor_passes_on_every_github_workflow(projects: dict[str, Path], tmp_path: Path) -> None:
    """Generated workflows and dependabot.yml, and the template's own workflow."""
    github = [p for name, p in projects.items() if "-github" in name]
    found = zizmor(*github, *OWN_WORKFLOWS)
    assert found == [], [(f["ident"], f["locations"][0]["symbolic"]["key"]) for f in found]
    # It can fail: Dependabot without its cooldown; the template's workflow run on tags.
    bad = tmp_path / "bad" / ".github"
    shutil.copytree(projects["uv-github"] / ".github", bad)
    dependabot_yml = bad / "dependabot.yml"
    text = dependabot_yml.read_text(encoding="utf-8")
    dependabot_yml.write_text(text.replace("default-days: 7", "default-days: 1"), "utf-8")
    own = bad / "workflows" / "own.yml"
    own.write_text(
        OWN_WORKFLOWS[0]
        .read_text(encoding="utf-8")
        .replace("    branches: [main]\n", '    branches: [main]\n    tags: ["v*"]\n'),
        encoding="utf-8",
    )
    idents = {f["ident"] for f in zizmor(bad.parent)}
    assert idents == {"dependabot-cooldown", "cache-poisoning"}, idents


def test_generated_projects_pass_codespell(projects: dict[str, Path]) -> None:
    """The spelling hook passes on what the template writes (every file, not only git's)."""
    for name in REVIEWED:
        proc = subprocess.run(
            [dev_tool("codespell")], cwd=projects[name], capture_output=True, text=True
        )
        assert proc.returncode == 0, (name, proc.stdout + proc.stderr)


# ---------------------------------------------------------------- Jupyter kernel and make doctor on real environments (slow)
def environment(tmp: Path, *tools: str) -> dict[str, str]:
    """PATH without the dev venv (only the named tools of it), a private Jupyter data folder."""
    return env_without_dev_venv(tool_bin(tmp, *tools), JUPYTER_DATA_DIR=str(tmp / "jupyter-data"))


def generate(template: Path, dst: Path, env: dict[str, str], **answers: str) -> str:
    answers = {"git_init": "false", "python_version": "3.11", **answers}
    proc = copier_copy(template, dst, env, **answers)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Environment ready" in text, text[-5000:]
    result = read_result(dst)
    assert result["status"] == "ok" and result["manager"] == answers["env_manager"], result
    return text


def doctor(project: Path, env: dict[str, str], label: str) -> tuple[int, str]:
    """`make doctor`'s exit status (make's own 2 when the doctor exits 1) and output."""
    proc = timed(
        f"make doctor ({label})", ["make", "--no-print-directory", "doctor"], cwd=project, env=env
    )
    text = proc.stdout + proc.stderr
    print(f"--- make doctor ({label}) -> {proc.returncode}\n{text}")
    assert "Traceback" not in text
    return proc.returncode, text


def assert_problem(text: str, what: str, fix: str) -> None:
    """`what` is reported as a FAIL line whose fix line follows and contains `fix`."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if "FAIL" in line and what in line]
    assert hits, f"no FAIL line with {what!r}:\n{text}"
    assert any(fix in lines[i + 1] and "fix:" in lines[i + 1] for i in hits), (what, fix, text)


# ---------------------------------------------------------------- uv (+ Jupyter kernel)


@pytest.fixture(scope="module")
def uv_project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("tooling-uv")
    env = environment(tmp, "uv")
    dst = tmp / "uv-kernel"
    generate(
        template,
        dst,
        env,
        project_name="Tool Kit",
        env_manager="uv",
        ml_framework="none",
        example="none",
        jupyter_kernel="true",
    )
    return dst, env


@pytest.mark.slow
def test_hook_registers_a_working_kernel(uv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = uv_project
    spec_file = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "tool-kit" / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    python = project / ".venv" / "bin" / "python"
    assert spec["argv"][0] == str(python)
    assert spec["display_name"] == "Tool Kit (uv)"
    # Start it the way Jupyter and VS Code do (jupyter_client, by kernel name) and ask it
    # which interpreter runs the notebook code.
    code = (
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='tool-kit', startup_timeout=120)\n"
        "out = []\n"
        "kc.execute_interactive('import sys, numpy; print(sys.prefix)', timeout=120,\n"
        "    output_hook=lambda m: out.append(m['content'].get('text', '')))\n"
        "kc.stop_channels(); km.shutdown_kernel(now=True)\n"
        "print('KERNEL-PREFIX', ''.join(out).strip())\n"
    )
    proc = timed("kernel start + execute", [str(python), "-c", code], env=env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = proc.stdout.split("KERNEL-PREFIX", 1)[1].strip()
    assert Path(prefix) == project / ".venv"


@pytest.mark.slow
def test_strict_mypy_and_pytest_pass_in_the_environment(
    uv_project: tuple[Path, dict[str, str]],
) -> None:
    """The project's strict settings hold for its own code; a warning fails a test."""
    project, env = uv_project
    python = str(venv_python(project / ".venv"))
    mypy = timed("uv: mypy (strict)", [python, "-m", "mypy"], cwd=project, env=env)
    assert mypy.returncode == 0 and "Success" in mypy.stdout, mypy.stdout + mypy.stderr
    pytest_cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    tests = timed("uv: pytest (strict)", pytest_cmd, cwd=project, env=env)
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout + tests.stderr
    probe = project / "tests" / "test_warning_probe.py"
    probe.write_text(
        "import warnings\n\n\ndef test_warns() -> None:\n"
        "    warnings.warn('old API', DeprecationWarning, stacklevel=1)\n",
        encoding="utf-8",
    )
    try:
        warned = timed("uv: pytest (a warning)", [*pytest_cmd, str(probe)], cwd=project, env=env)
    finally:
        probe.unlink()
    assert warned.returncode == 1 and "DeprecationWarning: old API" in warned.stdout, warned.stdout


@pytest.mark.slow
@posix_only("`make doctor` with the Makefile's POSIX shell recipes")
def test_doctor_uv_healthy_then_broken(uv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = uv_project
    uv = dev_tool("uv")
    python = str(project / ".venv" / "bin" / "python")

    code, text = doctor(project, env, "uv healthy")
    assert code == 0 and "Everything looks healthy." in text
    assert "ok    the environment matches uv.lock" in text
    assert "ok    import numpy" in text and "ok    import tool_kit" in text

    # Run from a shell where another environment is active: says so, checks the project's anyway.
    proc = timed(
        "doctor with another env active",
        [sys.executable, "tools/envtool", "doctor"],
        cwd=project,
        env={**env, "VIRTUAL_ENV": str(DEV_BIN.parent)},
    )
    other = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert_problem(other, "is not the project's environment", "source .venv/bin/activate")
    assert "1 problem(s) found" in other and "ok    import numpy" in other

    # Break 1: a dependency uninstalled behind uv's back.
    subprocess.run([uv, "pip", "uninstall", "--python", python, "pandas"], env=env, check=True)
    code, text = doctor(project, env, "uv pandas uninstalled")
    assert code != 0 and "problem(s) found" in text
    assert_problem(text, "pandas is declared (pandas>=2.1) but not installed", "uv sync")
    assert_problem(text, "the environment differs from uv.lock: + pandas==", "uv sync")
    subprocess.run([uv, "sync", "--locked"], cwd=project, env=env, check=True)

    # Break 2: a dependency added to pyproject.toml by hand, without `uv lock`.
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        original.replace('    "numpy>=1.26",\n', '    "numpy>=1.26",\n    "tqdm>=4",\n')
    )
    try:
        code, text = doctor(project, env, "uv stale lock")
        assert code != 0 and "problem(s) found" in text
        assert_problem(text, "uv.lock is out of date with pyproject.toml", "uv lock")
        assert_problem(text, "tqdm is declared (tqdm>=4) but not installed", "uv sync")
    finally:
        pyproject.write_text(original, encoding="utf-8")


# ---------------------------------------------------------------- venv


@pytest.fixture(scope="module")
def venv_project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    if not find_python("3.11"):
        pytest.skip("no Python 3.11 here for the venv manager")
    tmp = tmp_path_factory.mktemp("tooling-venv")
    env = environment(tmp)
    dst = tmp / "venv-doctor"
    generate(
        template,
        dst,
        env,
        project_name="Venv Doc",
        env_manager="venv",
        ml_framework="none",
        example="none",
        jupyter_kernel="false",
    )
    return dst, env


@pytest.mark.slow
@posix_only("`make doctor` with the Makefile's POSIX shell recipes")
def test_doctor_venv_healthy_then_broken(venv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = venv_project
    python = str(project / ".venv" / "bin" / "python")
    assert not (Path(env["JUPYTER_DATA_DIR"]) / "kernels").exists()  # jupyter_kernel=false

    code, text = doctor(project, env, "venv healthy")
    assert code == 0 and "Everything looks healthy." in text
    assert "ok    requirements.lock pins every declared dependency" in text
    assert "ok    installed versions match the lock file" in text

    # Break 1: a dependency uninstalled.
    subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "pandas"], env=env, check=True)
    code, text = doctor(project, env, "venv pandas uninstalled")
    assert code != 0 and "problem(s) found" in text
    assert_problem(text, "pandas is declared (pandas>=2.1) but not installed", "make env")
    assert_problem(text, "pandas locked but not installed", "-m pip install -r requirements.lock")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", "requirements.lock"],
        cwd=project,
        env=env,
        check=True,
    )

    # Break 2: pyproject.toml gains a dependency the lock does not pin, and a pin drifts.
    pyproject = project / "pyproject.toml"
    lock = project / "requirements.lock"
    originals = {p: p.read_text(encoding="utf-8") for p in (pyproject, lock)}
    pyproject.write_text(
        originals[pyproject].replace('    "numpy>=1.26",\n', '    "numpy>=1.26",\n    "tqdm>=4",\n')
    )
    numpy_pin = re.search(r"(?m)^numpy==(\S+)$", originals[lock])
    assert numpy_pin, originals[lock]
    lock.write_text(originals[lock].replace(numpy_pin[0], "numpy==1.26.0"), encoding="utf-8")
    try:
        code, text = doctor(project, env, "venv stale lock")
        assert code != 0 and "problem(s) found" in text
        assert_problem(text, "requirements.lock is out of date: it lacks tqdm>=4", "make env")
        assert_problem(text, f"numpy {numpy_pin[1]} installed, 1.26.0 locked", "make lock")
    finally:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")


@pytest.mark.slow
@posix_only("`make lock` with the Makefile's POSIX shell recipes")
def test_make_lock_is_the_tool_writing_the_lock(
    uv_project: tuple[Path, dict[str, str]], venv_project: tuple[Path, dict[str, str]]
) -> None:
    """`make lock` calls the tool (the one writer of each lock file): uv re-resolves uv.lock;
    venv records the environment as it is, with the header the set-up writes."""
    project, env = uv_project
    proc = timed("make lock (uv)", ["make", "--no-print-directory", "lock"], cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tools/envtool lock" in proc.stdout and "uv lock wrote uv.lock" in proc.stdout
    project, env = venv_project
    lock = project / "requirements.lock"
    lock.write_text("numpy==0.0.1\n", encoding="utf-8")  # stale
    proc = timed("make lock (venv)", ["make", "--no-print-directory", "lock"], cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = lock.read_text(encoding="utf-8")
    assert text.startswith("# Exact versions that worked (pip freeze)")
    assert re.search(r"(?m)^numpy==\d+\.\d+", text) and "numpy==0.0.1" not in text
    code, report = doctor(project, env, "venv after make lock")
    assert code == 0 and "ok    installed versions match the lock file" in report
