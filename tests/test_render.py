"""Render every valid combination of the main choices and check every generated file."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from envtool.config import Config, config_problems
from packaging.version import Version
from validate_pyproject import api as vp

from extensions.copier_mlops import MIN_COPIER
from tests.conftest import (
    COPIER_YML,
    MANAGERS,
    QUIET,
    ROOT,
    TOOL,
    dev_tool,
    env_without_dev_venv,
    read_result,
    render,
    run_captured,
    timed,
    tomllib,
    venv_python,
)

FRAMEWORKS = [("none", None), ("sklearn", None)] + [
    (fw, acc) for fw in ("pytorch", "tensorflow") for acc in ("cpu", "cuda")
]
EXAMPLES = ["mnist", "none"]

# Secondary options, varied so that every pair of values (including pairs with the main choices)
# appears in at least one render.
OTHERS: dict[str, list[Any]] = {
    "python_version": ["3.10", "3.11", "3.12", "3.13", "3.14"],
    "license": ["MIT", "BSD-3-Clause", "Apache-2.0", "none"],
    "package_index_url": ["", "https://pypi.example.org/simple"],
    "extra_dependencies": ["", "seaborn, tqdm>=4.66 pyyaml"],
    "author_email": ["", "ada@example.org"],
    "experiment_tracking": ["mlflow", "wandb", "none"],
    "data_versioning": ["none", "dvc"],
    # A Dockerfile or none: which files a project gets (its contents: test_docker, per variant).
    "dockerfile": [True, False],
}


def valid(row: dict[str, Any]) -> bool:
    return not (row["ml_framework"] == "tensorflow" and row["python_version"] == "3.14")


def matrix() -> list[dict[str, Any]]:
    """Full product of the main choices; secondary options filled greedily to cover all pairs."""
    rows = [
        {"env_manager": m, "ml_framework": fw, "accelerator": acc, "example": ex}
        for m, (fw, acc), ex in itertools.product(MANAGERS, FRAMEWORKS, EXAMPLES)
    ]
    uncovered = set(_all_pairs(rows))
    for row in rows:
        best, best_gain = None, -1
        for combo in itertools.product(*OTHERS.values()):
            cand = {**row, **dict(zip(OTHERS, combo, strict=True))}
            if not valid(cand):
                continue
            gain = len(uncovered & set(_pairs(cand)))
            if gain > best_gain:
                best, best_gain = cand, gain
        assert best is not None
        row.update(best)
        uncovered -= set(_pairs(best))
    return rows


def _pairs(row: dict[str, Any]) -> Iterator[tuple[tuple[str, Any], tuple[str, Any]]]:
    items = sorted((k, str(v)) for k, v in row.items())
    yield from itertools.combinations(items, 2)


def _all_pairs(rows: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, Any], tuple[str, Any]]]:
    """Every pair that involves a secondary option and can occur in a valid row."""
    main_values = {k: sorted({str(r[k]) for r in rows}) for k in rows[0]}
    values = {**main_values, **{k: [str(v) for v in vs] for k, vs in OTHERS.items()}}
    for (k1, vs1), (k2, vs2) in itertools.combinations(sorted(values.items()), 2):
        if k1 not in OTHERS and k2 not in OTHERS:
            continue
        for v1, v2 in itertools.product(vs1, vs2):
            if {k1: v1, k2: v2} in ({"ml_framework": "tensorflow", "python_version": "3.14"},):
                continue
            yield (k1, v1), (k2, v2)


MATRIX = matrix()


def every_value_once(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `rows`, picked greedily, until each value of each answer appears in one of them:
    every conditional of the template runs at least once (pairs are the newest copier's job)."""

    def values(row: dict[str, Any]) -> set[tuple[str, str]]:
        return {(k, str(v)) for k, v in row.items()}

    wanted, chosen = set().union(*map(values, rows)), []
    while wanted:
        best = max(rows, key=lambda r: len(wanted & values(r)))
        chosen.append(best)
        wanted -= values(best)
    return chosen


# The declared minimum copier renders fewer rows: its start-up and each render are slower, and
# what it could get wrong (a Jinja or copier feature the template uses) shows in any row that
# takes that branch.
MIN_MATRIX = every_value_once(MATRIX)


@functools.cache
def validator() -> vp.Validator:
    return vp.Validator()  # compiling its schemas takes seconds: once per process


def test_matrix_covers_every_pair() -> None:
    covered = set().union(*(set(_pairs(r)) for r in MATRIX))
    missing = set(_all_pairs(MATRIX)) - covered
    assert not missing, f"pairs never rendered: {sorted(missing)[:10]}"
    assert len(MATRIX) == len(MANAGERS) * 6 * 2  # every manager of copier.yml, hybrids too


def expected_files(a: dict[str, Any], pkg: str) -> set[str]:
    """Exactly the files a combination of answers must produce."""
    files = {
        ".copier-answers.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".python-version",
        "Makefile",
        "README.md",
        "pyproject.toml",
        f"src/{pkg}/__init__.py",
        f"src/{pkg}/py.typed",
        f"tests/test_{pkg}.py",
        "tools/envtool.json",
    }
    # The environment tool ships with the project (make env runs it without copier), with only
    # the modules this project uses: its manager's (a hybrid's: conda's and its tool's too), the
    # GPU check with a deep-learning framework, the kernel step when asked for; never copying.py
    # (it needs copier: the template's own copy runs it).
    manager = a["env_manager"]
    own = {manager.replace("-", "_"), *manager.split("-")}
    unused = {
        "copying.py",
        *(
            f"managers/{m.stem}.py"
            for m in (TOOL / "managers").glob("[a-z]*.py")
            if m.stem not in own
        ),
    }
    if manager not in ("conda-poetry", "conda-uv"):  # the conda half of a hybrid
        unused |= {"managers/_hybrid.py", "conda_records.py"}
    if manager not in ("venv", "poetry"):  # uv finds Python itself; conda installs it
        unused.add("discovery.py")
    if manager not in ("venv", "poetry", "conda-poetry"):  # requirements files, Poetry's group
        unused.add("pins.py")  # and pinning locks: uv's and conda's are checked by their tools
    if a["ml_framework"] not in ("pytorch", "tensorflow"):
        unused.add("gpu.py")
    if not a.get("jupyter_kernel", a["example"] == "mnist"):  # copier.yml's default
        unused.add("kernel.py")
    tool = {p.relative_to(TOOL).as_posix() for p in TOOL.rglob("*.py")} - unused
    files |= {"tools/envtool/" + rel for rel in tool}
    files |= {
        "venv": {"requirements.txt", "requirements-dev.txt"},
        "conda": {"environment.yml"},
        "poetry": {"poetry.toml"},
        "uv": set(),
        "conda-poetry": {"environment.yml", "poetry.toml"},
        "conda-uv": {"environment.yml"},
    }[a["env_manager"]]
    ci = a.get("ci", "github")
    files |= {
        "github": {".github/workflows/ci.yml", ".github/dependabot.yml"},
        "gitlab": {".gitlab-ci.yml", "renovate.json"},
        "none": set(),
    }[ci]
    if a["dockerfile"]:
        files |= {"Dockerfile", ".dockerignore", ".devcontainer/devcontainer.json"}
    if a["license"] != "none":
        files.add("LICENSE")
    if a["example"] == "mnist":
        files |= {f"src/{pkg}/data.py", f"src/{pkg}/eda.py", f"tests/test_{pkg}_data.py",
                  f"tests/test_{pkg}_eda.py", "notebooks/01_explore_digits.ipynb"}  # fmt: skip
        if a["ml_framework"] != "none":
            files |= {f"src/{pkg}/train.py", f"src/{pkg}/evaluate.py", f"src/{pkg}/model.py",
                      f"tests/test_{pkg}_train.py", f"tests/test_{pkg}_tracking.py",
                      "configs/data/digits.yaml", "configs/data/mnist.yaml",
                      "configs/experiment/full.yaml", f"src/{pkg}/sweep.py",
                      "configs/sweep.yaml"}  # fmt: skip
            if a.get("data_versioning") == "dvc":
                files |= {"dvc.yaml", "params.yaml"}
    elif a["ml_framework"] != "none":  # the skeleton
        files |= {f"src/{pkg}/{m}.py" for m in ("data", "model", "predict", "train")}
        files |= {f"tests/test_{pkg}_skeleton.py", "configs/data/default.yaml"}
        if a.get("data_versioning") == "dvc":
            files.add("dvc.yaml")
    tracking = a.get("experiment_tracking", "mlflow" if a["example"] == "mnist" else "none")
    if a["ml_framework"] != "none":  # Hydra configs, runs and tracking for the training code
        files |= {f"src/{pkg}/{m}.py" for m in ("config", "runs", "tracking")}
        files |= {"configs/train.yaml", "configs/trainer/default.yaml", "configs/tracking/none.yaml",
                  f"configs/model/{a['ml_framework']}.yaml", "configs/experiment/quick.yaml"}  # fmt: skip
        if tracking != "none":
            files.add(f"configs/tracking/{tracking}.yaml")
        if tracking == "mlflow" and a["example"] == "mnist":  # the registry's gate, make promote
            files.add(f"src/{pkg}/promote.py")
    if a["example"] == "mnist" and a["ml_framework"] != "none":  # serving's default: fastapi
        files |= {f"src/{pkg}/api.py", f"src/{pkg}/static/index.html", f"tests/test_{pkg}_api.py"}
    if a.get("data_versioning") == "dvc":
        files |= {".dvc/config", ".dvc/.gitignore", ".dvcignore"}
    return files


def rendered_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- the declared minimum copier
OLDER_COPIER = "9.6.0"  # the release before the minimum: it must stop before writing


def copier_venv(root: Path, version: str) -> Path:
    """A venv with copier==`version` as the README installs it (with copier-template-extensions
    and uv beside it); returns its Python."""
    uv = dev_tool("uv")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, root], check=True, env=env)
    python = venv_python(root)
    packages = [f"copier=={version}", "copier-template-extensions", "uv"]
    subprocess.run([uv, "pip", "install", "-q", "--python", python, *packages], check=True, env=env)
    return Path(python)


@pytest.fixture(scope="module")
def min_copier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a venv holding the declared minimum copier (made once per test module)."""
    return copier_venv(tmp_path_factory.mktemp("copier-min"), MIN_COPIER)


# Renders every row of the matrix in one process of the minimum copier (its start-up once).
RENDER_ALL = """
import json, sys
from pathlib import Path
from copier import run_copy
src, out, rows, quiet = json.loads(Path(sys.argv[1]).read_text())
for i, row in enumerate(rows):
    run_copy(src, Path(out) / str(i), data={**quiet, "project_name": "Digit Lab", **row},
             defaults=True, unsafe=True, quiet=True)
"""


@pytest.fixture(scope="module")
def min_renders(min_copier: Path, template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("min-renders")
    rows = [{k: v for k, v in a.items() if v is not None} for a in MIN_MATRIX]
    job = out / "rows.json"
    job.write_text(json.dumps([str(template), str(out), rows, QUIET]), encoding="utf-8")
    proc = timed(
        f"render matrix with copier {MIN_COPIER}",
        [min_copier, "-c", RENDER_ALL, job],
        env=env_without_dev_venv(None),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.mark.parametrize(
    ("answers", "copier"),
    [(a, "newest") for a in MATRIX]
    + [pytest.param(a, "minimum", marks=pytest.mark.slow) for a in MIN_MATRIX],
    ids=lambda v: "-".join(str(x) for x in v.values()) if isinstance(v, dict) else v,
)
def test_render_combination(
    template: Path,
    tmp_path: Path,
    answers: dict[str, Any],
    copier: str,
    request: pytest.FixtureRequest,
) -> None:
    """Every combination with the newest copier (this venv's), MIN_MATRIX's with the minimum."""
    data = {k: v for k, v in answers.items() if v is not None}
    if copier == "minimum":
        dst = request.getfixturevalue("min_renders") / str(MIN_MATRIX.index(answers))
    else:
        dst = render(template, tmp_path / "p", project_name="Digit Lab", **data)
    pkg = "digit_lab"
    files = rendered_files(dst)

    # Exactly the expected files: nothing missing, nothing from another manager.
    assert files == expected_files(answers, pkg)

    for rel in files:
        path = dst / rel
        text = path.read_text(encoding="utf-8")
        if rel.startswith("tools/envtool/"):  # copied verbatim, never rendered
            assert text == (TOOL / rel.removeprefix("tools/envtool/")).read_text()
            continue
        # `${{ ... }}` is GitHub Actions' own expression syntax, not Jinja.
        assert not re.search(r"(?<!\$)\{\{|\{%", text), f"leftover Jinja in {rel}"
        assert ".jinja" not in rel
        if rel.endswith(".toml"):
            tomllib.loads(text)
        elif rel.endswith((".yml", ".yaml")):
            yaml.safe_load(text)
        elif rel.endswith(".py"):
            compile(text, rel, "exec")
        elif rel.endswith(".json"):
            json.loads(text)

    # The tool accepts the config copier wrote for these answers (extra dependencies included),
    # which has exactly the schema's fields (Config: the one definition of tools/envtool.json).
    config = json.loads((dst / "tools" / "envtool.json").read_text())
    assert config_problems(config) == []
    assert set(config) == {f.name for f in dataclasses.fields(Config)} - {"project"}
    pyproject = tomllib.loads((dst / "pyproject.toml").read_text())
    validator()(pyproject)  # PEP 621 + tool.uv / tool.poetry / tool.ruff schemas
    reqs = pyproject["project"]["dependencies"]
    names = {re.split(r"[\[<>=!~]", r)[0] for r in reqs}
    fw_pkg = {"pytorch": "torch", "tensorflow": "tensorflow", "sklearn": "scikit-learn"}
    # A hybrid's CUDA framework build is conda's (environment.yml), never pyproject.toml's too.
    conda_fw = answers["env_manager"].startswith("conda-") and answers["accelerator"] == "cuda"
    if answers["ml_framework"] in fw_pkg:
        assert (fw_pkg[answers["ml_framework"]] in names) != conda_fw
    if answers["extra_dependencies"]:
        assert {"seaborn", "tqdm", "pyyaml"} <= names
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    check_manager_files(dst, answers, pyproject, reqs)

    if answers["dockerfile"]:
        parser = DockerfileParser(path=str(dst / "Dockerfile"))
        instructions = [i["instruction"] for i in parser.structure]
        assert "FROM" in instructions and ("CMD" in instructions or "ENTRYPOINT" in instructions)


def check_manager_files(
    dst: Path, a: dict[str, Any], pyproject: dict[str, Any], reqs: list[str]
) -> None:
    index = a["package_index_url"]
    manager = a["env_manager"]
    cuda_tag = "cu" + COPIER_YML["cuda_version"]["default"].replace(".", "")
    torch_index = "download.pytorch.org/whl/" + (cuda_tag if a["accelerator"] == "cuda" else "cpu")
    if manager == "venv":
        lines = (dst / "requirements.txt").read_text().splitlines()
        assert [x for x in lines if x and not x.startswith(("#", "-"))] == reqs
        assert (f"--index-url {index}" in lines) == bool(index)
        if a["ml_framework"] == "pytorch":
            assert any(torch_index in x for x in lines if x.startswith("--extra-index-url"))
        dev = (dst / "requirements-dev.txt").read_text().splitlines()
        assert "-r requirements.txt" in dev and "-e ." in dev
    elif manager == "conda":
        env = yaml.safe_load((dst / "environment.yml").read_text())
        assert env["name"] == "digit-lab" and env["channels"][0] == "conda-forge"
        deps = env["dependencies"]
        assert f"python={a['python_version']}" in deps
        pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
        assert pip_section[-1] == "-e ."
        assert (f"--index-url {index}" in pip_section) == bool(index)
        # conda-forge packages stay conda packages; only what conda-forge lacks goes to pip.
        assert "numpy>=1.26" in deps and "numpy>=1.26" not in pip_section
        if a["extra_dependencies"]:
            assert "seaborn" in pip_section
    elif manager in ("conda-poetry", "conda-uv"):
        check_hybrid_files(dst, a, pyproject, reqs)
    elif manager == "poetry":
        poetry = pyproject["tool"]["poetry"]
        assert poetry["packages"] == [{"include": "digit_lab", "from": "src"}]
        dev = {"pytest", "ruff", "mypy"} | ({"ipykernel"} if a["example"] == "mnist" else set())
        if a["example"] == "mnist" and a["ml_framework"] != "none":  # serving's API tests
            dev.add("httpx")
        assert set(poetry["group"]["dev"]["dependencies"]) == dev
        sources = {s["name"]: s for s in poetry.get("source", [])}
        if index:
            assert sources["primary"] == {"name": "primary", "url": index, "priority": "primary"}
        if a["ml_framework"] == "pytorch":
            (src,) = [s for s in sources.values() if s["priority"] == "explicit"]
            assert torch_index in src["url"]
            assert poetry["dependencies"]["torch"]["source"] == src["name"]
        assert tomllib.loads((dst / "poetry.toml").read_text())["virtualenvs"]["in-project"]
    else:
        uv = pyproject.get("tool", {}).get("uv", {})
        indexes = {i["name"]: i for i in uv.get("index", [])}
        if index:
            assert indexes["primary"]["url"] == index and indexes["primary"]["default"]
        else:
            assert "primary" not in indexes
        if a["ml_framework"] == "pytorch":
            (tidx,) = [i for i in indexes.values() if i.get("explicit")]
            assert torch_index in tidx["url"]
            assert uv["sources"]["torch"][0]["index"] == tidx["name"]
        assert pyproject["dependency-groups"]["dev"]


def check_hybrid_files(
    dst: Path, a: dict[str, Any], pyproject: dict[str, Any], reqs: list[str]
) -> None:
    """conda's half (environment.yml) and the Python half (pyproject.toml): one owner each."""
    manager, fw = a["env_manager"], a["ml_framework"]
    env = yaml.safe_load((dst / "environment.yml").read_text())
    assert env["name"] == "digit-lab" and env["channels"] == ["conda-forge", "nodefaults"]
    tool = {"conda-poetry": "poetry>=2.1", "conda-uv": "uv>=0.8"}[manager]
    cuda = {"pytorch": ["pytorch-gpu>=2.4"], "tensorflow": ["tensorflow-gpu>=2.16"]}
    conda_fw = cuda.get(fw, []) if a["accelerator"] == "cuda" else []
    assert env["dependencies"] == [f"python={a['python_version']}", "pip", tool, *conda_fw]
    names = {re.split(r"[\[<>=!~]", r)[0] for r in reqs}
    conda_owned = {"pip", "poetry", "uv"} | ({"torch", "tensorflow"} if conda_fw else set())
    assert "numpy" in names and not names & conda_owned
    config = json.loads((dst / "tools" / "envtool.json").read_text())
    assert config["conda_provides"] == ["python", "pip", tool.split(">")[0]] + (
        [{"pytorch": "torch", "tensorflow": "tensorflow"}[fw]] if conda_fw else []
    )
    if manager == "conda-poetry":
        assert pyproject["tool"]["poetry"]["packages"] == [{"include": "digit_lab", "from": "src"}]
        # Poetry installs into the conda env, never a virtualenv of its own.
        assert tomllib.loads((dst / "poetry.toml").read_text())["virtualenvs"] == {"create": False}
    else:
        assert pyproject["dependency-groups"]["dev"]
        assert not (dst / "poetry.toml").exists()


# What Windows forbids in a path component (students clone the template there: copier checks it
# out with git, which cannot create such a file and stops).
WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*\\\x00-\x1f]')
WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?")


def test_every_repository_path_can_be_checked_out_on_windows() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    assert len(listed) > 50, "git ls-files listed too little to be this repository"
    bad = [
        path
        for path in listed
        for part in path.split("/")
        if part
        and (
            WINDOWS_FORBIDDEN.search(part)
            or part.endswith((" ", "."))
            or WINDOWS_RESERVED.fullmatch(part)
        )
    ]
    assert not bad, f"paths Windows cannot check out: {bad}"


@pytest.mark.slow
def test_minimum_copier_creates_a_uv_environment(
    min_copier: Path, template: Path, tmp_path: Path
) -> None:
    """The README's flow with the declared minimum copier: copy with the tasks, a real uv
    environment (uv beside copier, not on PATH), the first commit, the closing message."""
    dst = tmp_path / "proj"
    proc = timed(
        f"copier {MIN_COPIER} copy (uv env)",
        [min_copier, "-m", "copier", "copy", "--trust", "--defaults", "--data", "ml_framework=none",
         "--data", "example=none", "--data", "env_manager=uv", template, dst],
        env=env_without_dev_venv(None),
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert read_result(dst).get("status") == "ok", text[-4000:]  # the tasks ran, and succeeded
    python = venv_python(dst / ".venv")
    check = run_captured([python, "-c", "import my_ml_project, numpy; print('ok')"], cwd=dst)
    assert check.stdout.strip() == "ok", check.stderr
    assert (dst / "uv.lock").is_file()
    log = run_captured(["git", "log", "--format=%s"], cwd=dst)  # the git-init task ran
    assert "Initial commit from the copier-mlops template" in log.stdout.splitlines(), log.stderr


@pytest.mark.slow
def test_older_copier_stops_before_writing_and_says_how_to_upgrade(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # As the README makes it (venv + pip), so the printed pip command can be run as printed.
    home = tmp_path_factory.mktemp("copier-old")
    subprocess.run([sys.executable, "-m", "venv", home], check=True)
    python = venv_python(home)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"copier=={OLDER_COPIER}", "copier-template-extensions"], check=True)
    dst = tmp_path_factory.mktemp("old") / "proj"
    proc = run_captured(
        [python, "-m", "copier", "copy", "--trust", "--defaults", template, dst],
        env=env_without_dev_venv(None),
    )
    assert proc.returncode != 0
    assert not dst.exists()
    message = proc.stderr.strip().splitlines()
    assert message[0] == (
        f"copier-mlops needs copier {MIN_COPIER} or newer; this is copier {OLDER_COPIER}. "
        "Nothing was written. Upgrade it, then run the same command again:"
    ), proc.stderr
    # The upgrade command, followed literally, gives a copier that renders the template.
    assert message[1].split()[:5] == [str(python), "-m", "pip", "install", "--upgrade"]
    install = run_captured(["bash", "-c", message[1]])
    assert install.returncode == 0, install.stderr
    again = run_captured(
        [python, "-m", "copier", "copy", "--trust", "--defaults", "--data", "create_env=false",
         "--data", "git_init=false", template, dst],
        env=env_without_dev_venv(None),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert (dst / "pyproject.toml").is_file()


def test_declared_minimum_is_stated_everywhere() -> None:
    """README, the course-staff guide and the test extra name the minimum the extension checks."""
    short = ".".join(MIN_COPIER.split(".")[:2])
    for doc in ("README.md", "docs/course-staff.md", "pyproject.toml"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert f'"copier>={short}"' in text, doc
        assert not re.search(r"copier *(>=|≥) *9\.[0-6]\b", text), doc
    assert Version(COPIER_YML["_min_copier_version"]) <= Version(MIN_COPIER)


def test_template_files_are_cached_by_name_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extension's bytecode cache (Jinja's BytecodeCache interface): the same template in
    two clones is one entry (copier renders from a new temporary clone each run), another source
    another entry, a broken entry is compiled again; an error names the file at hand."""
    import traceback

    from jinja2 import FileSystemLoader
    from jinja2.sandbox import SandboxedEnvironment

    from extensions.copier_mlops import TemplateCache, cache_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(a) }}{{ 1 // b }}\n"

    def render(clone: str, text: str = source, **values: Any) -> str:
        folder = tmp_path / clone
        folder.mkdir(exist_ok=True)
        (folder / "README.md.jinja").write_text(text, encoding="utf-8")
        environment = SandboxedEnvironment(
            loader=FileSystemLoader(folder), bytecode_cache=TemplateCache(cache_folder())
        )
        return environment.get_template("README.md.jinja").render(**values)

    assert render("old_abc", a=1, b=1) == "11"
    entries = list(cache_folder().iterdir())
    assert len(entries) == 1
    assert render("new_xyz", a=2, b=1) == "21"  # read from the cache
    assert list(cache_folder().iterdir()) == entries
    assert render("edited", "{{ a }}!", a=3) == "3!"
    assert len(list(cache_folder().iterdir())) == 2  # another source: another entry
    entries[0].write_bytes(b"not a bytecode bucket")
    assert render("again", a=4, b=1) == "41"
    with pytest.raises(ZeroDivisionError) as caught:
        render("third_clone", a=5, b=0)
    files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert str(tmp_path / "third_clone" / "README.md.jinja") in files, files


# Every generated Python module and notebook, each with the longest name the checks below use.
LINT_KEYS = ("ml_framework", "example", "experiment_tracking", "serving", "data_versioning",
             "python_version")  # fmt: skip
LINT_ROWS = [
    dict(zip(LINT_KEYS, row, strict=True))
    for row in [  # 3.14: its formatter writes some statements differently (except A, B:)
        ("sklearn", "mnist", "mlflow", "fastapi", "dvc", "3.14"),
        ("pytorch", "mnist", "wandb", "fastapi", "none", "3.12"),
        ("tensorflow", "mnist", "none", "none", "dvc", "3.10"),
        ("pytorch", "none", "mlflow", "none", "none", "3.14"),
        ("tensorflow", "none", "wandb", "none", "dvc", "3.11"),
        ("none", "mnist", "none", "none", "none", "3.13"),
    ]
]


@pytest.mark.parametrize("answers", LINT_ROWS, ids=lambda a: "-".join(a.values()))
def test_generated_code_is_ruff_clean_whatever_the_name_length(
    template: Path, tmp_path: Path, answers: dict[str, str]
) -> None:
    """The project's own `ruff format --check` and `ruff check` (its CI and pre-commit run them)
    pass with the longest package name accepted: no generated line depends on the name's length."""
    from extensions.rules import SLUG_MAX

    name = "A " + "very long " * 5 + "digit recognition lab"
    dst = render(template, tmp_path / "p", project_name=name, **answers)
    package = (dst / "src").iterdir().__next__().name
    assert len(package) == SLUG_MAX, package
    for check in (["format", "--check", "--diff"], ["check"]):
        proc = run_captured([dev_tool("ruff"), *check, "."], cwd=dst)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
