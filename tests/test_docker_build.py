"""The pip, uv and poetry Dockerfiles, built for real with buildah and run.

Base images are made locally (see docker_support) and tagged with the names the Dockerfiles use,
so each generated Dockerfile is built exactly as rendered. Each variant is rendered, locked the
way a user would (`uv lock`, `poetry lock`), dirtied with host state that must not reach the
image (.git, .venv, .env, data, caches), built, inspected, run, and removed before the next one,
so the disk holds one variant at a time. Timings and sizes go to <cache>/docker-build-report.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests import docker_support
from tests.conftest import pip_index_url, render
from tests.docker_support import Build, Buildah

pytestmark = pytest.mark.slow

PYTHON = docker_support.DEBIAN_PYTHON
# The step that installs the dependencies (it must come from the cache after a source edit).
DEPS_STEP = {
    "venv": "pip install --no-cache-dir -r requirements.txt",
    "uv": "uv sync --locked --no-install-project",
    "poetry": "poetry install --only main --no-root",
}
# Built here: every buildable manager, for ml_framework none and sklearn (with the MNIST starter,
# the package index as a build argument, and the rebuild check). Per manager the rebuild variant
# comes first, so its first build starts with cold caches.
BUILT: dict[str, dict[str, Any]] = {}
for _manager in ("venv", "uv", "poetry"):
    BUILT[f"{_manager}-sklearn"] = {
        "env_manager": _manager,
        "ml_framework": "sklearn",
        "example": "mnist",
        "package_index_url": "index",
    }
    BUILT[f"{_manager}-none"] = {
        "env_manager": _manager,
        "ml_framework": "none",
        "example": "none",
        "package_index_url": "index" if _manager == "poetry" else "",
    }
REBUILT = [name for name in BUILT if name.endswith("-sklearn")]
UNBUILDABLE = {
    "conda-sklearn-cpu": "conda variant: its base image mambaorg/micromamba cannot be pulled (no "
    "registry reachable) and no conda/mamba/micromamba can be installed here to make a stand-in",
    "conda-pytorch-cuda": "conda CUDA variant: no image registry and no conda here",
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
    sanity_code: str
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
    """Create the lock file the Dockerfile installs from, as the user (or the hook) would."""
    tools = Path(sys.executable).parent
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": PYTHON}
    cmd = {"uv": [str(tools / "uv"), "lock"], "poetry": [str(tools / "poetry"), "lock"]}.get(
        manager
    )
    if cmd:
        proc = subprocess.run(
            cmd, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


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
    sanity = next(i["value"] for i in dockerfile.structure if "sanity import ok" in i["value"])
    tag = f"localhost/copier-mlops-test/{name}:latest"
    first = buildah.build(project, tag)
    built = Image(name, answers, project, package, tag, first, json.loads(sanity)[-1])
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


def test_image_runs_the_sanity_import_as_non_root(image: Image, buildah: Buildah) -> None:
    config = buildah.config(image.tag)
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/app"
    assert buildah.run(image.tag, "id", "-u") == "1000"
    # The build already ran the sanity import (a failing one fails the build); run it again.
    out = buildah.run(image.tag, "python", "-c", image.sanity_code)
    assert out.startswith("sanity import ok:"), out
    assert f"{image.package} 0.1.0" in out  # installed metadata: the package itself, not a path
    expected = {"numpy", "pandas", "matplotlib"} | (
        {"sklearn"} if image.answers["ml_framework"] == "sklearn" else set()
    )
    assert {part.split()[0] for part in out.split(":", 1)[1].split(", ")} == {
        image.package
    } | expected
    if config["Cmd"][:2] == ["python", "-c"]:
        assert buildah.run(image.tag) == out  # the default command is that same import


def test_image_has_no_host_state_tools_or_caches(image: Image, buildah: Buildah) -> None:
    files = buildah.files(image.tag)
    assert not [f for f in files if HOST_MARK in f]
    assert not [f for f in files if re.search(r"(^|/)(\.git|\.env|\.pytest_cache)(/|$)", f)]
    assert not [f for f in files if f.endswith(f"tests/test_{image.package}.py")]
    assert not [f for f in files if re.search(r"(^|/)(\.cache|poetry-cache)(/|$)", f)]
    assert not [f for f in files if f in {"bin/uv", "bin/uvx"} or f.startswith("opt/poetry")]
    # /app holds the environment and nothing else (no source tree, no data).
    in_app = {f.split("/")[1] for f in files if f.startswith("app/")}
    assert in_app == ({".venv"} if image.answers["env_manager"] != "venv" else set())
    # The project is installed as a regular package, not as a link back to a source tree.
    site = [f for f in files if f.endswith(f"site-packages/{image.package}/__init__.py")]
    assert len(site) == 1, site
    pths = [f for f in files if f.endswith(".pth") and "site-packages/" in f]
    assert not [f for f in pths if "editable" in f or image.package in f]


@pytest.mark.parametrize("name", list(UNBUILDABLE))
def test_variants_that_cannot_be_built_here(name: str) -> None:
    """They are still rendered, parsed and linted, in test_docker.py."""
    from tests.test_docker import VARIANTS

    assert name in VARIANTS
    pytest.skip(UNBUILDABLE[name] + "; its Dockerfile is parsed and linted in test_docker.py")


MNIST_BUILT = [name for name, answers in BUILT.items() if answers["example"] == "mnist"]


@pytest.mark.parametrize("image", MNIST_BUILT, indirect=True)
def test_mnist_image_command_is_training(image: Image, buildah: Buildah) -> None:
    """The default command of an MNIST project trains (the others run the sanity import)."""
    assert buildah.config(image.tag)["Cmd"] == ["python", "-m", f"{image.package}.train"]


# Training is the same package code in every image: run it once, in the pip variant.
@pytest.mark.parametrize("image", ["venv-sklearn"], indirect=True)
def test_mnist_training_runs_in_the_image(image: Image, buildah: Buildah) -> None:
    """Training on the offline digits data works inside the image."""
    out = buildah.run(
        image.tag, "sh", "-c", f"python -m {image.package}.train --dataset digits && ls models"
    )
    assert "digits_metrics.json" in out.splitlines(), out


@pytest.mark.parametrize("image", REBUILT, indirect=True)
def test_source_edit_rebuild_reuses_the_dependency_layer(image: Image, buildah: Buildah) -> None:
    init = image.project / "src" / image.package / "__init__.py"
    init.write_text(init.read_text() + '\nBUILD_MARK = "second build"\n')
    second = buildah.build(image.project, image.tag)
    image.rebuilds.append(second)
    assert second.step_cached(DEPS_STEP[image.answers["env_manager"]]), second.output
    # The environment's layer in the final image is reused too: only the wheel's layer changes.
    assert second.step_cached("COPY --from=deps "), second.output
    assert not second.step_cached("COPY src/ src/"), second.output
    assert not second.step_cached("COPY --from=wheel "), second.output
    # What remains is building and installing the wheel, the sanity import, and buildah checking
    # the cached environment layer (it hashes the venv: ~6 s); the first build also resolved,
    # downloaded and installed every dependency (measured: 0.17-0.28 of the first build's time).
    assert second.seconds < 0.4 * image.first.seconds, (second.seconds, image.first.seconds)
    out = buildah.run(
        image.tag, "python", "-c", f"import {image.package}; print({image.package}.BUILD_MARK)"
    )
    assert out == "second build"


# ---------------------------------------------------------------- the devcontainer's dev stage


@pytest.mark.parametrize("manager", ["uv", "venv", "poetry"])
def test_devcontainer_dev_stage(
    manager: str, buildah: Buildah, template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`--target dev` as .devcontainer/devcontainer.json builds it: the locked dependencies plus
    the dev tools, the project editable from /app, non-root; with the working copy mounted over
    /app (the devcontainer's workspaceMount) the project's own tests pass in it."""
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
            tag, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", volume=workspace
        )
        assert " passed" in tests.splitlines()[-1] and "failed" not in tests, tests
        files = buildah.files(tag)
        assert not [f for f in files if HOST_MARK in f]  # the .dockerignore holds here too
    finally:
        buildah("rm", "--all")
        buildah("rmi", "--force", tag)
        buildah("rmi", "--prune", "--force")
