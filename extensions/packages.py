"""What a project's environment installs and how its manager is run, derived from the answers.

copier.yml's hidden values `conda_provides`, `dependencies`, `dev_dependencies` and
`manager_commands` are one-line calls of conda_half, runtime_requirements, dev_requirements and
commands_by_manager (extensions/copier_mlops.py registers them; their names differ from the
values', which the templates and tools/envtool.json read). The items themselves are data
(extensions/data.yml); only the choice of items is code. Tests import the functions directly.
Only the standard library, PyYAML (a copier dependency) and the environment tool's schema of
tools/envtool.json (envtool.config: a `dependencies` item is its Dependency) are imported.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from envtool.config import Dependency

DATA_FILE = Path(__file__).with_name("data.yml")

# The distribution of each deep-learning framework answer (PyTorch's is torch).
FRAMEWORK_PACKAGE = {"pytorch": "torch", "tensorflow": "tensorflow"}
# What serving=fastapi runs: the app, its server, form uploads and image decoding.
SERVING_PACKAGES = ("fastapi", "uvicorn", "python-multipart", "pillow")
# Tracking answers that are also the name of the package they install.
TRACKERS = ("mlflow", "wandb")


@functools.cache
def data() -> dict[str, Any]:
    """extensions/data.yml (rules.py reads the validators' part of the same file)."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when built
    loaded: dict[str, Any] = yaml.load(DATA_FILE.read_text("utf-8"), Loader=loader)
    return loaded


def conda_half(python_tool: str, ml_framework: str, cuda: bool) -> list[str]:
    """A hybrid's conda half (environment.yml): Python, pip, its Python tool and, for CUDA, the
    framework's conda-forge build; every other package is the tool's. [] for other managers."""
    if not python_tool:
        return []
    framework = FRAMEWORK_PACKAGE.get(ml_framework) if cuda else None
    return ["python", "pip", python_tool, *([framework] if framework else [])]


def runtime_names(
    ml_framework: str, example: str, experiment_tracking: str, serving: str, data_versioning: str
) -> list[str]:
    """The runtime packages these answers need (data.yml's names), in the files' order."""
    names = ["numpy", "pandas", "matplotlib"]
    if ml_framework == "sklearn" or example == "mnist":  # the starter's data are sklearn's digits
        names.append("scikit-learn")
    if ml_framework in FRAMEWORK_PACKAGE:
        names.append(FRAMEWORK_PACKAGE[ml_framework])
    if ml_framework != "none":  # training code (the starter or the skeleton) reads Hydra configs
        names.append("hydra-core")
    if ml_framework != "none" and example == "mnist":  # the starter's `make sweep`
        names.append("optuna")
    if experiment_tracking in TRACKERS:
        names.append(experiment_tracking)
    if serving == "fastapi":
        names.extend(SERVING_PACKAGES)
    if data_versioning == "dvc":
        names.append("dvc")
    return names


def package(name: str, cuda: bool, owner: str) -> Dependency:
    """data.yml's item `name` as a requirement, its GPU build when `cuda`."""
    item = data()["runtime_packages"][name]
    build = {**item, **item.get("cuda", {})} if cuda else item
    return {
        "req": build["req"], "name": name, "import": build["import"], "conda": build["conda"],
        "owner": owner,
    }  # fmt: skip


def dvc_plugin_package(plugin: str, owner: str) -> Dependency:
    """The DVC remote's plugin (dvc-s3...), the same name on PyPI and conda-forge."""
    spec = f"{plugin}{data()['dvc_plugin_version']}"
    return {
        "req": spec, "name": plugin, "import": plugin.replace("-", "_"), "conda": spec,
        "owner": owner,
    }  # fmt: skip


def runtime_requirements(
    env_manager: str,
    conda_provides: Sequence[str],
    ml_framework: str,
    cuda: bool,
    example: str,
    experiment_tracking: str,
    serving: str,
    data_versioning: str,
    dvc_plugin: str,
    extras: Sequence[Dependency],
) -> list[Dependency]:
    """copier.yml's `dependencies`: the one list every manager's files and the sanity import
    read. Plain conda owns every package; a hybrid's conda owns what `conda_provides` names,
    its Python tool the rest. `dvc_plugin`: the remote's ("" for a local folder); `extras`: the
    parsed extra_dependencies (always the Python tool's)."""
    own = "conda" if env_manager == "conda" else "python"
    items: list[Dependency] = [
        package(name, cuda, "conda" if name in conda_provides else own)
        for name in runtime_names(
            ml_framework, example, experiment_tracking, serving, data_versioning
        )
    ]
    if data_versioning == "dvc" and dvc_plugin:
        items.append(dvc_plugin_package(dvc_plugin, own))
    return [*items, *extras]


def dev_requirements(jupyter_kernel: bool, serving: str) -> list[str]:
    """copier.yml's `dev_dependencies`: the test and lint tools, the kernel, the API's client."""
    dev: dict[str, list[str]] = data()["dev_packages"]
    kernel = dev["jupyter_kernel"] if jupyter_kernel else []
    return [*dev["always"], *kernel, *(dev["serving"] if serving == "fastapi" else [])]


def commands_by_manager(project_slug: str) -> dict[str, dict[str, str]]:
    """copier.yml's `manager_commands`: each manager's user commands (data.yml's), conda's
    naming the project's environment."""
    return {
        manager: {key: command.replace("{slug}", project_slug) for key, command in cmds.items()}
        for manager, cmds in data()["manager_commands"].items()
    }
