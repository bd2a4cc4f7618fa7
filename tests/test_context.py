"""The render context (extensions/context.py): each derived fact is computed once, and every
generated file that states it states the same value; no template derives one itself."""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import Facts, readme_sections, render_context
from extensions.packages import commands_by_manager
from tests.conftest import MANAGERS, ROOT, render

FRAMEWORKS = ["none", "sklearn", "pytorch", "tensorflow"]
SLUG = "fact-check"
# Every manager with every framework; CI and accelerator vary along (both CI systems and both
# accelerators meet every manager).
COMBINATIONS = {
    f"{manager}-{framework}": {
        "env_manager": manager,
        "ml_framework": framework,
        "ci": "github" if i % 2 else "gitlab",
        "accelerator": "cuda" if i % 4 == 2 else "cpu",
    }
    for i, (manager, framework) in enumerate(itertools.product(MANAGERS, FRAMEWORKS))
}


@pytest.fixture(scope="module")
def rendered(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("context")
    return {
        name: render(template, out / name, project_name="Fact Check", python_version="3.12", **a)
        for name, a in COMBINATIONS.items()
    }


def facts_of(answers: dict[str, str]) -> Facts:
    commands = commands_by_manager(SLUG)[answers["env_manager"]]
    return render_context(
        answers["env_manager"], answers["ml_framework"], answers["accelerator"], commands
    )


def ci_python_lines(project: Path, ci: str) -> list[str]:
    """Every command of the CI file that runs a module of the environment (`... -m ruff`)."""
    if ci == "github":
        flow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
        runs = [s.get("run", "") for s in flow["jobs"]["test"]["steps"]]
    else:
        runs = yaml.safe_load((project / ".gitlab-ci.yml").read_text())["test"]["script"]
    lines = [line.strip() for run in runs for line in run.splitlines()]
    return [line for line in lines if re.search(r" -m (ruff|mypy|pytest|dvc)\b", line)]


def make_recipe(makefile: str, target: str) -> list[str]:
    """The commands of a Makefile target, as written."""
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = itertools.takewhile(lambda line: line.startswith("\t"), lines[start + 1 :])
    return [line.strip() for line in recipe]


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_each_fact_reads_the_same_everywhere(rendered: dict[str, Path], name: str) -> None:
    answers = COMBINATIONS[name]
    project, facts = rendered[name], facts_of(answers)
    config = json.loads((project / "tools" / "envtool.json").read_text(encoding="utf-8"))
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    # The run prefix: the tool's `run` command, the Makefile's PY (its tool as a variable), every
    # CI command, and the README's kernel command.
    run = config["commands"]["run"]
    assert facts["run_python"] == (f"{run} python" if run else ".venv/bin/python")
    assert f"\nPY := {facts['make_python']}\n" in makefile
    tool = facts["run_python"].split()[0]
    assert facts["make_python"].replace(f"$({tool.upper()})", tool) == facts["run_python"]
    lines = ci_python_lines(project, answers["ci"])
    assert lines and all(line.startswith(facts["run_python"] + " -m ") for line in lines), lines
    assert f"{facts['run_python']} -m ipykernel install" in readme
    # The command table: `make lint` and `make test` run the checks CI runs, in its order, each
    # through the same Python (the Makefile's PY, CI's run prefix); the README and pre-commit
    # run them through the user's shell Python.
    checks = facts["checks"]
    assert {c["target"] for c in checks} == {"lint", "test"}
    for target in ("lint", "test"):
        expected = [f"$(PY) -m {c['module']}" for c in checks if c["target"] == target]
        assert make_recipe(makefile, target) == expected
    ordered = [c for target in ("lint", "test") for c in checks if c["target"] == target]
    ran = [line for line in lines if " -m dvc " not in line]
    assert ran == [f"{facts['run_python']} -m {c['module']}" for c in ordered]
    pre_commit = (project / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert f"entry: {facts['shell_python']} -m mypy\n" in pre_commit
    assert f"make test        # or: {facts['shell_python']} -m pytest\n" in readme
    # The lock: where the project has one, the README names it and the image installs from it
    # (venv's image reads requirements.lock as constraints of requirements.txt).
    lock = facts["python_lock"] or facts["lock_file"]
    if lock:
        assert f"`{lock}`" in readme
    copies = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
    if facts["lock_file"]:
        assert any(lock in line.split() for line in copies), copies
    # What the image's dependency layer is made from: copied, and named in the README.
    copied = {Path(word).name for line in copies for word in line.split()[1:-1]}
    assert set(facts["image_inputs"]) <= copied, (facts["image_inputs"], copies)
    inputs = " or ".join(f"`{name}`" for name in facts["image_inputs"])
    assert f"(until {inputs} changes)" in readme
    # The hybrid's tool, the GPU build and the framework's name.
    assert (project / "poetry.toml").exists() == (facts["lock_tool"] == "poetry")
    assert (project / "environment.yml").exists() == facts["conda_family"]
    assert config["accelerator"] == ("cuda" if facts["cuda"] else "cpu")
    assert ("--gpus all" in makefile) == facts["cuda"]
    if facts["cuda"]:
        assert f"CUDA build of {facts['framework_name']}" in readme
        assert facts["framework_name"] in dockerfile or facts["conda_family"]
    # The image's Python, in the serve stage's health check.
    if "AS serve" in dockerfile:
        assert f'CMD [{json.dumps(facts["image_python"])}, "-c",' in dockerfile


# What the context computes, and the Jinja that would compute it again (a comparison of
# env_manager or ml_framework for a fact the context gives).
DERIVATIONS = {
    "run_python / make_python": r"run -n |run --locked python|\.venv/bin/python -m (ruff|pytest|mypy)",
    "framework_name": r"'PyTorch' if ml_framework",
    "deep_learning": r"ml_framework in \[",
    "conda_family / lock_tool / hybrid": r"env_manager\.(startswith|split)|env_manager in \[",
    "python_tool / python_lock": r"env_manager == 'conda-(poetry|uv)'",
    "lock_file": r"env_manager == 'uv' %\}`uv\.lock`",
}


def test_no_template_derives_a_fact_of_the_context() -> None:
    found: list[tuple[str, str, Any]] = []
    for path in sorted((ROOT / "template").rglob("*.jinja")):
        text = path.read_text(encoding="utf-8")
        for fact, pattern in DERIVATIONS.items():
            for match in re.finditer(pattern, text):
                found.append((path.relative_to(ROOT).as_posix(), fact, match[0]))
    assert found == []
    # The context keys copier.yml reads are the ones it computes (no stale name).
    copier_yml = (ROOT / "copier.yml").read_text(encoding="utf-8")
    read = set(re.findall(r"facts\.(\w+)", copier_yml))
    assert read and read <= set(Facts.__annotations__)


# The generated README is assembled from template/readme/: each fragment small enough to read.
README_PARTS = ROOT / "template" / "readme"
MAX_CONDITIONS = 6
CONDITION = re.compile(r"\{%-?\s*(?:el)?if\b|\bif\b[^%]*\belse\b")  # tags and inline ifs
# Secondary answers that choose sections, each set tried with every manager and framework.
SECTION_ANSWERS = [
    {"example": "mnist", "serving": "fastapi", "experiment_tracking": "mlflow",
     "data_versioning": "dvc", "dockerfile": True, "package_index_url": "https://i.example/simple",
     "jupyter_kernel": True, "ci": "github", "accelerator": "cuda"},
    {"example": "none", "serving": "none", "experiment_tracking": "wandb",
     "data_versioning": "dvc", "dockerfile": True, "package_index_url": "",
     "jupyter_kernel": False, "ci": "gitlab", "accelerator": "cpu"},
    {"example": "mnist", "serving": "none", "experiment_tracking": "none",
     "data_versioning": "none", "dockerfile": False, "package_index_url": "",
     "jupyter_kernel": False, "ci": "none", "accelerator": "cpu"},
]  # fmt: skip


def test_readme_is_assembled_from_small_fragments_the_context_chooses() -> None:
    parts = {p.name.removesuffix(".md.jinja"): p.read_text() for p in README_PARTS.iterdir()}
    conditions = {name: len(CONDITION.findall(text)) for name, text in parts.items()}
    assert {name: n for name, n in conditions.items() if n > MAX_CONDITIONS} == {}
    # README.md.jinja itself only includes what the context lists (its `if`s: the title lines).
    readme = (ROOT / "template" / "README.md.jinja").read_text(encoding="utf-8")
    assert "{% for section in readme_sections %}" in readme
    assert len(CONDITION.findall(readme)) <= 3
    # Every section the context names exists, and every fragment is used by some answers (the
    # Docker section includes its image's text by the context's docker_variant).
    used: set[str] = set()
    for manager, framework, others in itertools.product(MANAGERS, FRAMEWORKS, SECTION_ANSWERS):
        answers: dict[str, Any] = {"env_manager": manager, "ml_framework": framework, **others}
        facts = facts_of({k: str(v) for k, v in answers.items()})
        answers.pop("accelerator")
        sections = readme_sections(facts, **answers)
        assert len(sections) == len(set(sections)) and set(sections) <= set(parts), sections
        used |= set(sections)
        if "docker" in sections:
            used.add(f"docker-image-{facts['docker_variant']}")
    assert used == set(parts)


# Every comparison of env_manager or ml_framework in a template (its text or its file name), or
# a lookup keyed by one.
COMPARISON = re.compile(
    r"\b(?:env_manager|ml_framework)\s*(?:==|!=|not\s+in\b|in\b)\s*(?:'[^']*'|\[[^\]]*\])"
    r"|\[\s*(?:env_manager|ml_framework)\s*\]|\b(?:env_manager|ml_framework)\.\w+\("
)
# What a comparison may still choose: only what the context does not provide. Each entry: a
# template path pattern, the comparisons allowed there, and what they choose.
ALLOWED: list[tuple[str, str, str]] = [
    # The framework's own code, configuration and prose (its model, its flavour in MLflow, its
    # install source, its file suffix): one branch per framework, nothing derived.
    ("*", r"ml_framework (==|!=) '(none|sklearn|pytorch|tensorflow)'", "the framework's own code"),
    ("template/readme/mnist.md.jinja", r"\[ml_framework\]", "the model, in a sentence"),
    ("template/*dvc.yaml*", r"\[ml_framework\]", "the saved model's file suffix"),
    # Files only one manager has (requirements*.txt are venv's own).
    ("template/{% if env_manager == 'venv' %}requirements*", r"env_manager == 'venv'",
     "venv's own files"),
    # CI installs with each manager's own steps and cache (the table of checks is the context's).
    ("template/*ci.yml.jinja", r"env_manager == '(uv|poetry|venv)'", "the install steps"),
    ("template/*.gitlab-ci.yml*", r"env_manager (==|!=) '(uv|poetry)'", "the install steps"),
    # How each tool takes the index's credentials (uv's and Poetry's own settings, else pip's).
    ("template/readme/package-index.md.jinja", r"env_manager == '(uv|poetry)'", "the tool's "
     "credential settings"),
]  # fmt: skip


def test_no_template_compares_a_manager_or_framework_for_a_fact_of_the_context() -> None:
    """A template may compare env_manager or ml_framework only to choose what the context does
    not provide (ALLOWED); everything else reads the context's facts."""
    unexplained: list[tuple[str, str]] = []
    for path in sorted((ROOT / "template").rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_dir() or rel.startswith("template/tools/envtool/"):  # the tool: Python
            continue
        for match in COMPARISON.finditer(rel + "\n" + path.read_text(encoding="utf-8")):
            found = re.sub(r"\s+", " ", match[0])
            if not any(
                fnmatch.fnmatchcase(rel, where) and re.fullmatch(what, found)
                for where, what, _ in ALLOWED
            ):
                unexplained.append((rel, found))
    assert unexplained == []
    # ... and the scan finds comparisons: a derivation added to a template is reported.
    assert COMPARISON.search("{% if env_manager in ['conda', 'conda-uv'] %}")
    assert COMPARISON.search("{{ {'uv': 'uv.lock'}[env_manager] }}")
