"""Jupyter kernel and `make doctor` on real environments, made by the real `copier copy --trust`.

One uv project (with jupyter_kernel) and one venv project; each doctor test walks one project
through healthy -> broken -> repaired, so the projects are created once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import COPIER, DEV_BIN, dev_tool, link_dev_tool, posix_only

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.slow

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_times() -> Iterator[None]:
    yield
    for name, seconds in TIMES.items():
        print(f"[tooling] {name}: {seconds:.1f}s")


def timed(name: str, cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    TIMES[name] = TIMES.get(name, 0.0) + time.monotonic() - t0
    return proc


def environment(tmp: Path, *tools: str) -> dict[str, str]:
    """PATH without the dev venv (only the named tools of it), a private Jupyter data folder."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        link_dev_tool(bin_dir, tool)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != DEV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        PATH=os.pathsep.join([str(bin_dir), *path]),
        UV_PYTHON_DOWNLOADS="never",
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
    )
    return env


def generate(template: Path, dst: Path, env: dict[str, str], **answers: str) -> str:
    args = [COPIER, "copy", "--trust", "--defaults"]
    for key, value in {"git_init": "false", "python_version": "3.11", **answers}.items():
        args += ["--data", f"{key}={value}"]
    proc = timed(f"copier copy + hook [{dst.name}]", [*args, str(template), str(dst)], env=env)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Environment ready" in text, text[-5000:]
    print(next((line for line in text.splitlines() if "time per step" in line), ""))
    return text


def doctor(project: Path, env: dict[str, str], label: str) -> tuple[int, str]:
    """`make doctor`'s exit status (make's own 2 when the doctor exits 1) and output."""
    proc = timed(
        f"make doctor ({label})", ["make", "--no-print-directory", "doctor"], cwd=project, env=env
    )
    text = proc.stdout + proc.stderr
    print(f"--- make doctor ({label}) -> {proc.returncode}\n{text}")
    assert "Traceback" not in text
    return proc.returncode, text


def assert_problem(text: str, what: str, fix: str) -> None:
    """`what` is reported as a FAIL line whose fix line follows and contains `fix`."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if "FAIL" in line and what in line]
    assert hits, f"no FAIL line with {what!r}:\n{text}"
    assert any(fix in lines[i + 1] and "fix:" in lines[i + 1] for i in hits), (what, fix, text)


# ---------------------------------------------------------------- uv (+ Jupyter kernel)


@pytest.fixture(scope="module")
def uv_project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("tooling-uv")
    env = environment(tmp, "uv")
    dst = tmp / "uv-kernel"
    generate(
        template,
        dst,
        env,
        project_name="Tool Kit",
        env_manager="uv",
        ml_framework="none",
        example="none",
        jupyter_kernel="true",
    )
    return dst, env


def test_hook_registers_a_working_kernel(uv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = uv_project
    spec_file = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "tool-kit" / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    python = project / ".venv" / "bin" / "python"
    assert spec["argv"][0] == str(python)
    assert spec["display_name"] == "Tool Kit (uv)"
    # Start it the way Jupyter and VS Code do (jupyter_client, by kernel name) and ask it
    # which interpreter runs the notebook code.
    code = (
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='tool-kit', startup_timeout=120)\n"
        "out = []\n"
        "kc.execute_interactive('import sys, numpy; print(sys.prefix)', timeout=120,\n"
        "    output_hook=lambda m: out.append(m['content'].get('text', '')))\n"
        "kc.stop_channels(); km.shutdown_kernel(now=True)\n"
        "print('KERNEL-PREFIX', ''.join(out).strip())\n"
    )
    proc = timed("kernel start + execute", [str(python), "-c", code], env=env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = proc.stdout.split("KERNEL-PREFIX", 1)[1].strip()
    assert Path(prefix) == project / ".venv"


@posix_only("`make doctor` with the Makefile's POSIX shell recipes")
def test_doctor_uv_healthy_then_broken(uv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = uv_project
    uv = dev_tool("uv")
    python = str(project / ".venv" / "bin" / "python")

    code, text = doctor(project, env, "uv healthy")
    assert code == 0 and "Everything looks healthy." in text
    assert "ok    the environment matches uv.lock" in text
    assert "ok    import numpy" in text and "ok    import tool_kit" in text

    # Run from a shell whose python is not the project's: says so, then checks the env anyway.
    proc = timed(
        "doctor from another python",
        [sys.executable, "src/tool_kit/doctor.py"],
        cwd=project,
        env=env,
    )
    other = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert_problem(other, "is not the project's environment", "source .venv/bin/activate")
    assert "1 problem(s) found" in other and "ok    import numpy" in other

    # Break 1: a dependency uninstalled behind uv's back.
    subprocess.run([uv, "pip", "uninstall", "--python", python, "pandas"], env=env, check=True)
    code, text = doctor(project, env, "uv pandas uninstalled")
    assert code != 0 and "problem(s) found" in text
    assert_problem(text, "pandas is declared (pandas>=2.1) but not installed", "uv sync")
    assert_problem(text, "the environment differs from uv.lock: + pandas==", "uv sync")
    subprocess.run([uv, "sync", "--locked"], cwd=project, env=env, check=True)

    # The doctor's fallback TOML reader (Python 3.10) reads the real uv.lock like tomllib.
    sys.path.insert(0, str(project / "src"))
    try:
        from tool_kit import doctor as module  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    lock_text = (project / "uv.lock").read_text(encoding="utf-8")
    versions = {p["name"]: p["version"] for p in tomllib.loads(lock_text)["package"]}
    minimal = {p["name"]: p["version"] for p in module._read_toml_minimal(lock_text)["package"]}
    assert minimal == versions and "numpy" in versions

    # Break 2: a dependency added to pyproject.toml by hand, without `uv lock`.
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        original.replace('    "numpy>=1.26",\n', '    "numpy>=1.26",\n    "tqdm>=4",\n')
    )
    try:
        code, text = doctor(project, env, "uv stale lock")
        assert code != 0 and "problem(s) found" in text
        assert_problem(text, "uv.lock is out of date with pyproject.toml", "uv lock")
        assert_problem(text, "tqdm is declared (tqdm>=4) but not installed", "uv sync")
    finally:
        pyproject.write_text(original, encoding="utf-8")


# ---------------------------------------------------------------- venv


@pytest.fixture(scope="module")
def venv_project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    if not shutil.which("python3.11", path=environment(tmp_path_factory.mktemp("probe"))["PATH"]):
        pytest.skip("no python3.11 on PATH for the venv manager")
    tmp = tmp_path_factory.mktemp("tooling-venv")
    env = environment(tmp)
    dst = tmp / "venv-doctor"
    generate(
        template,
        dst,
        env,
        project_name="Venv Doc",
        env_manager="venv",
        ml_framework="none",
        example="none",
        jupyter_kernel="false",
    )
    return dst, env


@posix_only("`make doctor` with the Makefile's POSIX shell recipes")
def test_doctor_venv_healthy_then_broken(venv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = venv_project
    python = str(project / ".venv" / "bin" / "python")
    assert not (Path(env["JUPYTER_DATA_DIR"]) / "kernels").exists()  # jupyter_kernel=false

    code, text = doctor(project, env, "venv healthy")
    assert code == 0 and "Everything looks healthy." in text
    assert "ok    requirements.lock pins every declared dependency" in text
    assert "ok    installed versions match the lock file" in text

    # Break 1: a dependency uninstalled.
    subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "pandas"], env=env, check=True)
    code, text = doctor(project, env, "venv pandas uninstalled")
    assert code != 0 and "problem(s) found" in text
    assert_problem(text, "pandas is declared (pandas>=2.1) but not installed", "make env")
    assert_problem(text, "pandas locked but not installed", "-m pip install -r requirements.lock")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", "requirements.lock"],
        cwd=project,
        env=env,
        check=True,
    )

    # Break 2: pyproject.toml gains a dependency the lock does not pin, and a pin drifts.
    pyproject = project / "pyproject.toml"
    lock = project / "requirements.lock"
    originals = {p: p.read_text(encoding="utf-8") for p in (pyproject, lock)}
    pyproject.write_text(
        originals[pyproject].replace('    "numpy>=1.26",\n', '    "numpy>=1.26",\n    "tqdm>=4",\n')
    )
    numpy_pin = re.search(r"(?m)^numpy==(\S+)$", originals[lock])
    assert numpy_pin, originals[lock]
    lock.write_text(originals[lock].replace(numpy_pin[0], "numpy==1.26.0"), encoding="utf-8")
    try:
        code, text = doctor(project, env, "venv stale lock")
        assert code != 0 and "problem(s) found" in text
        assert_problem(text, "requirements.lock is out of date: it lacks tqdm>=4", "make env")
        assert_problem(text, f"numpy {numpy_pin[1]} installed, 1.26.0 locked", "make lock")
    finally:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
