"""The generated project's CI files: GitHub workflows, GitLab CI, Dependabot and Renovate.

They are validated against the GitHub Actions / GitLab CI / Dependabot / Renovate JSON schemas
that check-jsonschema ships (offline) and read for the manager's install-from-lock, ruff and
pytest steps; GitHub workflows, the template repository's own included, also pass actionlint and
zizmor's audit.
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
from packaging.version import Version

from tests.conftest import (
    MANAGERS,
    ROOT,
    dev_tool,
)

INSTALL_FROM_LOCK = {
    "uv": ["uv sync --locked"],
    "poetry": ["poetry check --lock", "poetry install"],
    "venv": ["pip install -r requirements.lock", "pip install -r requirements-dev.txt"],
    # The project's own set-up, as `make env` runs it: conda creates the env (then Poetry/uv
    # install into it, guarded), and the sanity import.
    "conda": ["tools/envtool setup --no-input"],
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
        "conda": "conda-incubator/setup-miniconda@",
        "conda-poetry": "conda-incubator/setup-miniconda@",
        "conda-uv": "conda-incubator/setup-miniconda@",
    }[manager]
    setup_step = next(s for s in test["steps"] if setup in s.get("uses", ""))
    # The cache each manager's docs recommend.
    cache = {
        "uv": ("enable-cache", True),
        "poetry": ("cache", "poetry"),
        "venv": ("cache", "pip"),
        "conda": ("conda-remove-defaults", "true"),
        "conda-poetry": ("conda-remove-defaults", "true"),  # conda-forge only
        "conda-uv": ("conda-remove-defaults", "true"),
    }[manager]
    assert setup_step["with"][cache[0]] == cache[1]
    if manager.startswith("conda"):
        # The same Miniforge action, commit and version as the template's own CI.
        own = (ROOT / ".github" / "workflows" / "tests.yml").read_text(encoding="utf-8")
        assert setup_step["uses"] in own
        assert setup_step["with"]["channels"] == "conda-forge"
        assert f"miniforge-version: {setup_step['with']['miniforge-version']}" in own
        assert test["defaults"]["run"]["shell"] == "bash -el {0}"  # where `conda` works
        install_step = next(s for s in test["steps"] if "tools/envtool setup" in s.get("run", ""))
        if manager == "conda-uv":
            assert install_step["env"] == {"UV_LOCKED": "1"}  # uv.lock is checked, not rewritten
    else:
        assert setup_step["with"]["python-version"] == "3.12"
    installs = [index_of(steps, cmd) for cmd in INSTALL_FROM_LOCK[manager]]
    install = max(installs)
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
    miniforge = next(
        s for s in conda["jobs"]["test"]["steps"] if "setup-miniconda" in s.get("uses", "")
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+", miniforge["with"]["miniforge-version"])
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
    install = max(installs)
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
        "conda": r"condaforge/miniforge3:\d+\.\d+\.\d+-\d+",
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


# ---------------------------------------------------------------- the workflow audit (zizmor)


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
