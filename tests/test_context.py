"""The render context (extensions/context.py): each derived fact is computed once, and every
generated file that states it states the same value; no template derives one itself."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import Facts, render_context
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
    # The lock: where the project has one, the README names it and the image installs from it
    # (venv's image installs requirements.txt, which the lock was made from).
    lock = facts["python_lock"] or facts["lock_file"]
    if lock:
        assert f"`{lock}`" in readme
    if facts["lock_tool"]:
        copies = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
        assert any(lock in line.split() for line in copies), copies
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
