"""The Jupyter kernel (fast parts): the answer's default and what it adds, registering without
ipykernel. The kernel a real set-up registers is started in tests/test_doctor.py, on the uv
environment the doctor's tests make.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import (
    dev_tool,
    tomllib,
    venv_python,
)

# ---------------------------------------------------------------- Jupyter kernel (fast parts)


def test_jupyter_kernel_default_follows_the_example(projects: dict[str, Path]) -> None:
    """On by default with the MNIST starter (notebooks), off without it; ipykernel follows."""
    from envtool.config import Config

    with_example = projects["uv-github"]
    without = projects["uv-github-noexample"]
    for project, wanted in ((with_example, True), (without, False)):
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        dev = [Requirement(r).name for r in pyproject["dependency-groups"]["dev"]]
        assert ("ipykernel" in dev) is wanted
        readme = (project / "README.md").read_text(encoding="utf-8")
        assert ("## Notebooks: the Jupyter kernel" in readme) is wanted
        config = Config.load(project)
        assert config.jupyter_kernel is wanted and config.project_name == "Tool Box"
    poetry = tomllib.loads((projects["poetry-github"] / "pyproject.toml").read_text("utf-8"))
    assert "ipykernel" in poetry["tool"]["poetry"]["group"]["dev"]["dependencies"]
    conda = yaml.safe_load((projects["conda-github"] / "environment.yml").read_text("utf-8"))
    assert any(str(d).startswith("ipykernel") for d in conda["dependencies"])


def test_register_kernel_without_ipykernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clear error naming the cause and the fix, and no half-written kernel spec."""
    from envtool.kernel import register_kernel
    from envtool.running import ToolError

    subprocess.run([dev_tool("uv"), "venv", "-q", str(tmp_path / "bare")], check=True)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ToolError) as caught:
        register_kernel(venv_python(tmp_path / "bare"), "tool-box", "Tool Box (uv)")
    assert caught.value.what == "ipykernel is not installed in the environment"
    assert "make env" in caught.value.fix and "--name tool-box" in caught.value.fix
    assert not (tmp_path / "data").exists()
    with pytest.raises(ToolError, match="cannot name a Jupyter kernel"):
        register_kernel(venv_python(tmp_path / "bare"), "Bad Name", "x")
