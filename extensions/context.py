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
      make_python: the same in the Makefile, whose variable ($(UV)) holds the tool it found.
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
    return Facts(
        deep_learning=deep_learning,
        cuda=deep_learning and accelerator == "cuda",
        framework_name=FRAMEWORK_NAMES.get(ml_framework, ml_framework),
        conda_family=conda_family,
        lock_tool=lock_tool,
        tool_run=bool(lock_tool) and not conda_family,
        hybrid=hybrid,
        python_tool=lock_tool if hybrid else "",
        python_lock=f"{lock_tool}.lock" if hybrid else "",
        lock_file=f"{lock_tool}.lock" if lock_tool else "" if conda_family else "requirements.lock",
        run_python=run_python,
        make_python=make_python,
        docker_variant="hybrid" if hybrid else env_manager,
        image_python="/opt/conda/bin/python" if conda_family else "python",
        image_run="micromamba run -n base python" if conda_family else "python",
    )
