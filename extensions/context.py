"""The render context: every fact the templates need that derives from the answers, computed once.

copier.yml's hidden value `facts` is render_context(...) of the answers; its other hidden values
(`cuda`, `lock_tool`, `hybrid`, ...) each read one key of it, and the templates read those or
`facts` directly: no template derives a fact from env_manager or ml_framework itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

# How each framework answer is named in prose (README, comments of the generated files).
FRAMEWORK_NAMES = {"none": "", "sklearn": "scikit-learn", "pytorch": "PyTorch",
                   "tensorflow": "TensorFlow"}  # fmt: skip
DEEP_LEARNING = ("pytorch", "tensorflow")
# The tools the Makefile runs through a variable ($(UV): the one it found, or the user's).
MAKE_VARIABLES = ("uv", "poetry", "conda")
# What the set-up looks for first, per manager (the README's "It finds ...").
FINDS = {"uv": "uv", "poetry": "Poetry", "conda": "mamba, micromamba or conda",
         "conda-poetry": "mamba, micromamba or conda (then the env's Poetry)",
         "conda-uv": "mamba, micromamba or conda (then the env's uv)"}  # fmt: skip


class Check(TypedDict):
    """One command of the project's checks: the Makefile target that runs it, the CI step's
    title, and what follows `<the environment's python> -m`."""

    target: str
    title: str
    module: str


# The checks, in the order the Makefile targets and both CI files run them (CI adds its own
# output formats through the tools' environment variables, not through other arguments).
CHECKS = (
    Check(target="lint", title="Lint (ruff check)", module="ruff check ."),
    Check(target="lint", title="Check formatting (ruff format)", module="ruff format --check ."),
    Check(target="lint", title="Type check (mypy)", module="mypy"),
    Check(target="test", title="Test (pytest)", module="pytest"),
)


def asks_accelerator(ml_framework: str) -> bool:
    """Whether the GPU question applies: PyTorch and TensorFlow have CUDA builds."""
    return ml_framework in DEEP_LEARNING


class Facts(TypedDict):
    """The facts (copier.yml's `facts`); each key is documented where it is computed."""

    deep_learning: bool
    cuda: bool
    framework_name: str
    conda_family: bool
    lock_tool: str
    tool_run: bool
    hybrid: bool
    python_tool: str
    python_lock: str
    lock_file: str
    run_python: str
    make_python: str
    shell_python: str
    shell_run: str
    make_dvc: str
    checks: list[Check]
    finds: str
    image_inputs: list[str]
    commands: dict[str, str]
    update_ecosystem: str
    docker_variant: str
    image_python: str
    image_run: str


def render_context(
    env_manager: str, ml_framework: str, accelerator: str, commands: Mapping[str, str]
) -> Facts:
    """The facts of these answers (`commands`: the manager's, copier.yml's manager_commands).

    - deep_learning: PyTorch or TensorFlow (the GPU question and check); cuda: their GPU build.
    - conda_family: conda makes the environment (conda and the hybrids).
    - lock_tool: the tool that owns the Python lock (uv, poetry; "" for venv and conda);
      tool_run: uv or Poetry alone (their own .venv, `<tool> run`); hybrid: conda for Python and
      CUDA, python_tool (poetry or uv, else "") for the packages, python_lock its lock file.
    - lock_file: the Python packages' lock the project commits ("" for conda, whose explicit
      lock is per platform: conda-<platform>.lock).
    - run_python: how to run the environment's Python without activating it (the manager's `run`
      prefix; venv: the venv's python), for CI, README and every command that needs it;
      make_python: the same in the Makefile, whose variable ($(UV)) holds the tool it found;
      shell_python: the same in the user's shell, where a venv or conda env is activated
      (README, pre-commit); shell_run: the prefix of the env's other commands there ("uv run ").
    - make_dvc: how the Makefile runs DVC: dvc.yaml's commands start with `python`, so a venv's
      python comes first on PATH (a tool's `run` and conda's do that themselves).
    - checks: the lint, format, type and test commands (CHECKS) that the Makefile and CI run.
    - finds: what the set-up looks for first (the README's set-up section).
    - image_inputs: the files whose change reinstalls the image's dependencies.
    - commands: the manager's user commands (`commands`, as given); update_ecosystem:
      Dependabot's package ecosystem for the Python lock (pip reads poetry.lock and requirements).
    - docker_variant: template/docker/<variant>.Dockerfile.jinja (the hybrids share one);
      image_python: the image's Python as an exec-form command names it (the health check);
      image_run: how a RUN step runs that Python (micromamba's base environment, activated).
    """
    deep_learning = asks_accelerator(ml_framework)
    conda_family = env_manager.startswith("conda")
    lock_tool = "" if env_manager in ("venv", "conda") else env_manager.split("-")[-1]
    hybrid = bool(lock_tool) and conda_family
    run_python = f"{commands['run']} python" if commands["run"] else ".venv/bin/python"
    tool = run_python.split()[0]
    make_python = (
        run_python.replace(tool, f"$({tool.upper()})", 1) if tool in MAKE_VARIABLES else run_python
    )
    shell_run = f"{commands['run']} " if lock_tool and not conda_family else ""
    venv_path = 'PATH="$(CURDIR)/.venv/bin:$$PATH" ' if env_manager == "venv" else ""
    lock_file = f"{lock_tool}.lock" if lock_tool else "" if conda_family else "requirements.lock"
    python_lock = f"{lock_tool}.lock" if hybrid else ""
    if conda_family:
        image_inputs = ["environment.yml", python_lock] if hybrid else ["environment.yml"]
    else:
        image_inputs = [lock_file] if lock_tool else ["requirements.txt", lock_file]
    return Facts(
        deep_learning=deep_learning,
        cuda=deep_learning and accelerator == "cuda",
        framework_name=FRAMEWORK_NAMES.get(ml_framework, ml_framework),
        conda_family=conda_family,
        lock_tool=lock_tool,
        tool_run=bool(lock_tool) and not conda_family,
        hybrid=hybrid,
        python_tool=lock_tool if hybrid else "",
        python_lock=python_lock,
        lock_file=lock_file,
        run_python=run_python,
        make_python=make_python,
        shell_python=f"{shell_run}python",
        shell_run=shell_run,
        make_dvc=f"{venv_path}$(PY) -m dvc",
        checks=list(CHECKS),
        finds=FINDS.get(env_manager, "Python"),
        image_inputs=image_inputs,
        commands=dict(commands),
        update_ecosystem="uv" if lock_tool == "uv" else "pip" if lock_file else "conda",
        docker_variant="hybrid" if hybrid else env_manager,
        image_python="/opt/conda/bin/python" if conda_family else "python",
        image_run="micromamba run -n base python" if conda_family else "python",
    )


def readme_sections(
    facts: Facts,
    *,
    env_manager: str,
    ml_framework: str,
    example: str,
    serving: str,
    experiment_tracking: str,
    data_versioning: str,
    dockerfile: bool,
    package_index_url: str,
    jupyter_kernel: bool,
    ci: str,
) -> list[str]:
    """The generated README's sections, in order: the files template/readme/<name>.md.jinja
    (README.md.jinja includes each; the Docker section includes its image's text by
    docker_variant)."""
    framework = ml_framework != "none"
    mnist = example == "mnist"
    trained = framework and mnist
    dvc = data_versioning == "dvc"
    manager = "hybrid" if facts["hybrid"] else env_manager
    chosen = {
        "setup": True,
        f"setup-{manager}": True,
        "tool-path": facts["tool_run"],
        "rebuild": True,
        "run-test": True,
        "mnist": mnist,
        "torchrun": mnist and ml_framework == "pytorch",
        "mnist-code": mnist,
        "serving": serving == "fastapi",
        "config": framework,
        "sweep": trained,
        "runs": framework,
        "mlflow": experiment_tracking == "mlflow",
        "registry": experiment_tracking == "mlflow" and trained,
        "mlflow-server": experiment_tracking == "mlflow",
        "wandb": experiment_tracking == "wandb",
        "dvc": dvc,
        "dvc-pipeline": dvc and trained,
        "dvc-skeleton": dvc and framework and not mnist,
        "dvc-add": dvc and not framework,
        "dvc-credentials": dvc,
        "docker": dockerfile,
        "docker-user": dockerfile and trained,
        "docker-serve": dockerfile and serving == "fastapi",
        "docker-gpu": dockerfile and facts["cuda"],
        "docker-versions": dockerfile,
        "devcontainer": dockerfile,
        "package-index": bool(package_index_url),
        "doctor": True,
        "kernel": jupyter_kernel,
        "pre-commit": True,
        "repo-review": True,
        "ci": ci != "none",
        f"updates-{ci}": ci != "none",
        "layout": True,
    }
    return [name for name, wanted in chosen.items() if wanted]
