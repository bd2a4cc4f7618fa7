"""What a project's environment installs and the commands it is run with: extensions/packages.py
(copier.yml's `dependencies`, `dev_dependencies`, `conda_provides`, `manager_commands`) and the
after-copy message, by plain import; one render checks that copier computes the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extensions import packages, rules
from extensions.copier_mlops import after_copy_message
from extensions.dvc_remote import dvc_plugin
from tests.conftest import COPIER_YML, MANAGERS, render

# The default answers' choices (uv, scikit-learn, the MNIST starter, MLflow, FastAPI, no DVC).
DEFAULTS: dict[str, Any] = {
    "env_manager": "uv", "conda_provides": [], "ml_framework": "sklearn", "cuda": False,
    "example": "mnist", "experiment_tracking": "mlflow", "serving": "fastapi",
    "data_versioning": "none", "dvc_plugin": "", "extras": [],
}  # fmt: skip


def requirements(**answers: Any) -> list[dict[str, Any]]:
    return [dict(d) for d in packages.runtime_requirements(**{**DEFAULTS, **answers})]


def test_default_answers_need_the_whole_starter_stack() -> None:
    deps = requirements()
    assert [d["name"] for d in deps] == [
        "numpy", "pandas", "matplotlib", "scikit-learn", "hydra-core", "optuna", "mlflow",
        "fastapi", "uvicorn", "python-multipart", "pillow",
    ]  # fmt: skip
    assert deps[0] == {
        "req": "numpy>=1.26", "name": "numpy", "import": "numpy", "conda": "numpy>=1.26",
        "owner": "python",
    }  # fmt: skip
    # The keys in this order: tools/envtool.json shows them so.
    assert all(list(d)[:5] == ["req", "name", "import", "conda", "owner"] for d in deps)
    assert next(d for d in deps if d["name"] == "matplotlib")["conda"] == "matplotlib-base>=3.8"


@pytest.mark.parametrize(
    ("answers", "names"),
    [
        ({"ml_framework": "none", "example": "none", "experiment_tracking": "none",
          "serving": "none"}, ["numpy", "pandas", "matplotlib"]),
        ({"ml_framework": "none", "serving": "none", "experiment_tracking": "wandb"},
         ["numpy", "pandas", "matplotlib", "scikit-learn", "wandb"]),  # the starter's digits
        ({"ml_framework": "pytorch", "example": "none", "experiment_tracking": "none",
          "serving": "none", "data_versioning": "dvc"},
         ["numpy", "pandas", "matplotlib", "torch", "hydra-core", "dvc"]),
    ],
)  # fmt: skip
def test_each_answer_adds_its_packages(answers: dict[str, Any], names: list[str]) -> None:
    assert [d["name"] for d in requirements(**answers)] == names


def test_plain_conda_owns_every_package_and_a_hybrid_only_its_half() -> None:
    assert {d["owner"] for d in requirements(env_manager="conda")} == {"conda"}
    half = packages.conda_half("uv", "pytorch", True)
    assert half == ["python", "pip", "uv", "torch"]
    deps = requirements(env_manager="conda-uv", conda_provides=half, ml_framework="pytorch")
    assert [d["name"] for d in deps if d["owner"] == "conda"] == ["torch"]


def test_gpu_builds_change_the_framework_requirement() -> None:
    def item(framework: str, cuda: bool) -> tuple[str, str]:
        d = requirements(ml_framework=framework, cuda=cuda, example="none")[3]
        return d["req"], d["conda"]

    assert item("pytorch", False) == ("torch>=2.4", "pytorch>=2.4")
    assert item("pytorch", True) == ("torch>=2.4", "pytorch-gpu>=2.4")
    assert item("tensorflow", False) == ("tensorflow>=2.16", "tensorflow>=2.16")
    assert item("tensorflow", True) == ("tensorflow[and-cuda]>=2.16", "tensorflow-gpu>=2.16")


@pytest.mark.parametrize(
    ("python_tool", "framework", "cuda", "half"),
    [
        ("", "pytorch", True, []),  # uv, poetry, venv, plain conda
        ("poetry", "sklearn", False, ["python", "pip", "poetry"]),
        ("uv", "tensorflow", False, ["python", "pip", "uv"]),
        ("poetry", "tensorflow", True, ["python", "pip", "poetry", "tensorflow"]),
    ],
)
def test_conda_half(python_tool: str, framework: str, cuda: bool, half: list[str]) -> None:
    assert packages.conda_half(python_tool, framework, cuda) == half


def test_the_dvc_remote_adds_its_plugin_after_dvc_and_extras_come_last() -> None:
    extras = rules.extra_requirements("seaborn, tqdm>=4.66")
    deps = requirements(data_versioning="dvc", dvc_plugin=dvc_plugin("s3://b/x"), extras=extras)
    assert [d["name"] for d in deps][-4:] == ["dvc", "dvc-s3", "seaborn", "tqdm"]
    assert deps[-3] == {
        "req": "dvc-s3>=3", "name": "dvc-s3", "import": "dvc_s3", "conda": "dvc-s3>=3",
        "owner": "python",
    }  # fmt: skip
    assert deps[-2:] == extras
    # A remote answered without DVC, or a local folder: no plugin.
    assert "dvc-s3" not in {d["name"] for d in requirements(dvc_plugin="dvc-s3")}
    assert [d["name"] for d in requirements(data_versioning="dvc")][-1] == "dvc"


def test_every_runtime_package_is_a_module_the_package_name_refuses() -> None:
    modules = {m.lower() for m in rules.environment_modules()}
    imports = [i["import"] for i in packages.data()["runtime_packages"].values()]
    plugins = [p.replace("-", "_") for p in ("dvc-s3", "dvc-gs", "dvc-azure", "dvc-ssh")]
    assert [m for m in imports + plugins if m.lower() not in modules] == []


@pytest.mark.parametrize(
    ("kernel", "serving", "extra"),
    [(False, "none", []), (True, "none", ["ipykernel>=6.29"]),
     (True, "fastapi", ["ipykernel>=6.29", "httpx>=0.27"])],
)  # fmt: skip
def test_dev_requirements(kernel: bool, serving: str, extra: list[str]) -> None:
    base = ["pytest>=8", "ruff>=0.6", "mypy>=1.11"]
    assert packages.dev_requirements(kernel, serving) == base + extra


def test_every_manager_has_its_commands() -> None:
    commands = packages.commands_by_manager("digit-lab")
    assert list(commands) == ["uv", "poetry", "conda", "conda-poetry", "conda-uv", "venv"]
    assert set(commands) == set(MANAGERS)  # one entry per env_manager choice
    for manager, c in commands.items():
        assert list(c) == ["env", "run", "test", "lock", "activate"], manager
    assert commands["conda-uv"]["run"] == "conda run --no-capture-output -n digit-lab"
    assert commands["conda"]["activate"] == "conda activate digit-lab"
    assert commands["venv"]["activate"].endswith(r"(Windows: .venv\Scripts\activate)")
    assert commands["uv"]["test"] == "uv run pytest"


def test_copier_yml_derives_them_by_one_call_each() -> None:
    names = ("conda_provides", "dependencies", "dev_dependencies", "manager_commands")
    for text in [COPIER_YML[name]["default"] for name in names] + [
        COPIER_YML["_message_after_copy"]
    ]:
        assert text.startswith("{{ ") and text.count("{{") == 1 and "{%" not in text, text


def test_copier_computes_what_the_functions_return(template: Path, tmp_path: Path) -> None:
    """A rendered project's tools/envtool.json holds the functions' values for its answers."""
    answers = {
        "env_manager": "conda-poetry", "ml_framework": "pytorch", "accelerator": "cuda",
        "data_versioning": "dvc", "dvc_remote": "gs://bucket/dvc", "jupyter_kernel": False,
        "extra_dependencies": "Seaborn tqdm (>=4.66)", "project_name": "Digit Lab",
    }  # fmt: skip
    config = json.loads(
        (render(template, tmp_path / "p", **answers) / "tools/envtool.json").read_text()
    )
    half = packages.conda_half("poetry", "pytorch", True)
    assert config["conda_provides"] == half
    assert config["dependencies"] == packages.runtime_requirements(
        "conda-poetry", half, "pytorch", True, "mnist", "mlflow", "fastapi", "dvc", "dvc-gs",
        rules.extra_requirements("Seaborn tqdm (>=4.66)"),
    )  # fmt: skip
    assert config["dev_dependencies"] == packages.dev_requirements(False, "fastapi")
    assert config["commands"] == packages.commands_by_manager("digit-lab")["conda-poetry"]


# ---------------------------------------------------------------- the after-copy message
COMMANDS = packages.commands_by_manager("p")


def test_after_copy_message_gives_a_venv_project_its_activation(tmp_path: Path) -> None:
    message = after_copy_message(tmp_path / "my project", "P", "venv", True, COMMANDS)
    assert message == (
        f'\nYour project "P" is in {tmp_path}/my project.\n'
        "If the environment step above says FAILED, fix what it names and run the retry "
        "command it printed.\n"
        f"Next:\n  cd '{tmp_path}/my project'\n"
        "  source .venv/bin/activate   (Windows: .venv\\Scripts\\activate)\n"
        "  python -m pytest   # run the tests\n"
        "README.md explains the rest.\n"
    )


def test_after_copy_message_follows_the_manager_the_project_really_uses(tmp_path: Path) -> None:
    """The set-up's fallback rewrites tools/envtool.json: its manager wins over the answer."""
    message = after_copy_message(tmp_path, "P", "conda", False, COMMANDS)
    assert "  conda activate p\n  python -m pytest   # run the tests\n" in message
    assert "FAILED" not in message
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text('{"env_manager": "venv"}')
    assert "  source .venv/bin/activate" in after_copy_message(
        tmp_path, "P", "conda", False, COMMANDS
    )


def test_after_copy_message_runs_poetry_commands_through_poetry(tmp_path: Path) -> None:
    lines = after_copy_message(tmp_path, "P", "poetry", False, COMMANDS).splitlines()
    at = lines.index(f"  cd {tmp_path}") + 1
    # `poetry`, or its full path when the user's PATH lacks it (then the advice follows).
    assert lines[at].endswith(" install   # (re)create the environment"), lines
    assert lines[at + 1].endswith(" run pytest   # run the tests"), lines
    assert lines[at].split()[0].endswith("poetry") and lines[-1] == "README.md explains the rest."
