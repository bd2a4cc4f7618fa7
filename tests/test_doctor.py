"""The doctor (`tools/envtool doctor`, `make doctor`): with no environment, its config and
checks by plain import, conda's drift through `conda compare` (the recording stand-in,
tests/conda_standin.py, NOT conda), then on real environments made by the real
`copier copy --trust`.

One uv project (with jupyter_kernel) and one venv project; each doctor test walks one project
through healthy -> broken -> repaired, so the projects are created once. The other checks of those
environments share them (the kernel the set-up registered, strict mypy and pytest, `make lock`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from envtool import probe
from envtool.managers import conda
from envtool.report import Report

from tests.conftest import (
    DEV_BIN,
    MANAGERS,
    WINDOWS,
    answer_conda_compare,
    copier_copy,
    dev_tool,
    env_without_dev_venv,
    find_python,
    good_config,
    install_conda_stand_in,
    link_dev_tool,
    manager_of,
    output,
    posix_only,
    read_result,
    run_captured,
    stand_in_log,
    timed,
    tomllib,
    tool_bin,
    tool_copy,
    venv_python,
)

# ---------------------------------------------------------------- the doctor (no environment)


def test_doctor_without_an_environment(projects: dict[str, Path], tmp_path: Path) -> None:
    """Run before any env exists (as `make doctor` would, with python3): names the problem."""
    project = projects["uv-github"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    link_dev_tool(bin_dir, "uv")
    env = {
        **os.environ,
        # The system's own folders only (Windows: System32).
        "PATH": os.pathsep.join(
            [str(bin_dir), os.path.join(os.environ["SYSTEMROOT"], "System32")]
            if WINDOWS
            else [str(bin_dir), "/usr/bin", "/bin"]
        ),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(
        [sys.executable, "tools/envtool", "doctor"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "FAIL  the project's environment does not exist" in text
    assert "fix: uv sync" in text
    assert "FAIL  uv.lock is missing" in text and "fix: uv lock" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("manager", MANAGERS)
def test_doctor_reads_the_declared_requirements(projects: dict[str, Path], manager: str) -> None:
    """The project's own probe (with pins.py where the manager's lock pins versions, which
    the project has) reads pyproject.toml (and a venv project's requirements files) with a real
    TOML parser: runtime and dev requirements of every manager's layout."""
    from envtool.manager import manager_class

    project = projects[f"{manager}-github"]
    spec = importlib.util.spec_from_file_location(
        "project_probe", project / "tools" / "envtool" / "probe.py"
    )
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    files = [f for f in manager_class(manager).requirement_files if (project / f).is_file()]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    pins = probe.tool_module("pins") if manager_class(manager).pins_lock else None
    declared = probe.declared_requirements(project, pyproject, files, pins)
    runtime = [r for group, r in declared if group == "runtime"]
    dev = [r for group, r in declared if group == "dev"]
    assert "numpy>=1.26" in runtime
    assert any(d.startswith("pytest") for d in dev) and any(d.startswith("ruff") for d in dev)


@posix_only("a #! script standing in for conda")
def test_doctor_conda_drift_with_recording_stand_in(
    projects: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """environment.yml against the env: conda's own `conda compare` (its parser and MatchSpec),
    each of its findings a problem with the fix; no environment: it says so first."""
    from envtool import doctor
    from envtool.config import Config
    from envtool.manager import manager_for

    project = projects["conda-github"]
    root = tmp_path / "stand-in"
    install_conda_stand_in(root / "bin")
    monkeypatch.setenv("PATH", str(root / "bin"))
    for var in ("CONDA_EXE", "MAMBA_EXE", "CONDA_PREFIX", "VIRTUAL_ENV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STANDIN_ROOT", str(root))
    # conda's own answers: its messages as JSON, exit status 0 on success, 1 on a difference
    answer_conda_compare(root, json.dumps(["Success. All the packages in the specification file are "
                                           "present in the environment with matching version and build string."]), 0)  # fmt: skip
    report = Report()
    manager = manager_for(Config.load(project))
    manager.check_lock(report, None)
    assert report.problems == [], report.problems
    assert stand_in_log(root)[-1]["args"] == [
        "compare", "--json", "-n", "tool-box", "environment.yml"
    ]  # fmt: skip
    answer_conda_compare(root, json.dumps([
        "numpy not found",
        "python found but mismatch. Specification pkg: python=3.12, Running pkg: python==3.11.9=h0_0",
    ]), 1)  # fmt: skip
    report = Report()
    manager.check_lock(report, None)
    whats = [what for what, _ in report.problems]
    assert any(w.startswith("numpy not found") for w in whats), whats
    assert any("python found but mismatch" in w and "3.11.9" in w for w in whats), whats
    assert all("make env" in fix for _, fix in report.problems)
    # The whole doctor: no environment named tool-box -> that problem, and the comparison.
    capsys.readouterr()
    assert doctor.doctor(project) == 1
    out = capsys.readouterr().out
    assert "FAIL  the conda environment tool-box does not exist" in out
    assert "FAIL  numpy not found" in out and "Traceback" not in out


# ---------------------------------------------------------------- its config and checks, by plain import


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("commands", '"commands" is missing'),
        ("name", '"dependencies"[0] lacks "name"'),
    ],
)
def test_doctor_refuses_a_config_without_required_keys(
    tmp_path: Path, drop: str, message: str
) -> None:
    """Without `commands` (or a dependency's `name`) the doctor said nothing of the config and
    died with a KeyError; now the config is refused, by name, and no fix is printed twice."""
    config = good_config()
    if drop == "commands":
        del config["commands"]
    else:
        config["dependencies"] = [{"req": "numpy", "import": "numpy"}]
    project = tool_copy(tmp_path, config)
    proc = run_captured([sys.executable, project / "tools" / "envtool", "doctor"], cwd=project,
                        env=env_without_dev_venv(None))  # fmt: skip
    text = output(proc)
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "KeyError" not in text, text
    assert message in text, text
    assert "git checkout tools/envtool.json" in text, text
    assert not re.search(r"fix: (.+)   \(or: \1\)", text), text


def test_doctor_python_check_needs_a_requires_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No requires-python: nothing to check, which is a problem, never "satisfies requires-python "."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    found = probe.probe({"package": "json", "distribution": "x", "project": str(tmp_path)})
    assert found["python_ok"] is None and found["requires_python"] == ""
    from envtool import doctor

    report = Report()
    doctor.check_probe(report, manager_of("uv", tmp_path), found)
    out = capsys.readouterr().out
    assert "satisfies requires-python" not in out, out
    assert ("pyproject.toml declares no requires-python: the environment's Python is unchecked",
            'add requires-python = ">=3.12" under [project] in pyproject.toml') in report.problems  # fmt: skip


@posix_only("a #! script standing in for conda")
@pytest.mark.parametrize(("printed", "status"), [("[]", 1), ("{}", 0), ("not json", 0), ("[]", 0)])
def test_conda_compare_always_gives_a_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str, status: int
) -> None:
    """Whatever `conda compare` (the recording stand-in, NOT conda) answers: ok, or a problem."""
    install_conda_stand_in(tmp_path)
    answer_conda_compare(tmp_path, printed, status)
    monkeypatch.setenv("STANDIN_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))

    report = Report()
    messages: list[str] = []
    monkeypatch.setattr(report, "ok", messages.append)
    manager = manager_of("conda", tmp_path)
    assert isinstance(manager, conda.CondaManager)
    manager.check_lock(report, None)
    assert len(report.problems) + len(messages) >= 1
    assert report.problems and "conda compare` failed" in report.problems[0][0]


# ---------------------------------------------------------------- Jupyter kernel and make doctor on real environments (slow)
def environment(tmp: Path, *tools: str) -> dict[str, str]:
    """PATH without the dev venv (only the named tools of it), a private Jupyter data folder."""
    return env_without_dev_venv(tool_bin(tmp, *tools), JUPYTER_DATA_DIR=str(tmp / "jupyter-data"))


def generate(template: Path, dst: Path, env: dict[str, str], **answers: str) -> str:
    """A bare project (no framework, no example: quick to install), its environment ready."""
    bare = {
        "git_init": "false",
        "python_version": "3.11",
        "ml_framework": "none",
        "example": "none",
    }
    answers = {**bare, **answers}
    proc = copier_copy(template, dst, env, **answers)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Environment ready" in text, text[-5000:]
    result = read_result(dst)
    assert result["status"] == "ok" and result["manager"] == answers["env_manager"], result
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
    generate(template, dst, env, project_name="Tool Kit", env_manager="uv", jupyter_kernel="true")
    return dst, env


@pytest.mark.slow
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


@pytest.mark.slow
def test_strict_mypy_and_pytest_pass_in_the_environment(
    uv_project: tuple[Path, dict[str, str]],
) -> None:
    """The project's strict settings hold for its own code; a warning fails a test."""
    project, env = uv_project
    python = str(venv_python(project / ".venv"))
    mypy = timed("uv: mypy (strict)", [python, "-m", "mypy"], cwd=project, env=env)
    assert mypy.returncode == 0 and "Success" in mypy.stdout, mypy.stdout + mypy.stderr
    pytest_cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    tests = timed("uv: pytest (strict)", pytest_cmd, cwd=project, env=env)
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout + tests.stderr
    probe = project / "tests" / "test_warning_probe.py"
    probe.write_text(
        "import warnings\n\n\ndef test_warns() -> None:\n"
        "    warnings.warn('old API', DeprecationWarning, stacklevel=1)\n",
        encoding="utf-8",
    )
    try:
        warned = timed("uv: pytest (a warning)", [*pytest_cmd, str(probe)], cwd=project, env=env)
    finally:
        probe.unlink()
    assert warned.returncode == 1 and "DeprecationWarning: old API" in warned.stdout, warned.stdout


@pytest.mark.slow
@posix_only("`make doctor` with the Makefile's POSIX shell recipes")
def test_doctor_uv_healthy_then_broken(uv_project: tuple[Path, dict[str, str]]) -> None:
    project, env = uv_project
    uv = dev_tool("uv")
    python = str(project / ".venv" / "bin" / "python")

    code, text = doctor(project, env, "uv healthy")
    assert code == 0 and "Everything looks healthy." in text
    assert "ok    the environment matches uv.lock" in text
    assert "ok    import numpy" in text and "ok    import tool_kit" in text

    # Run from a shell where another environment is active: says so, checks the project's anyway.
    proc = timed(
        "doctor with another env active",
        [sys.executable, "tools/envtool", "doctor"],
        cwd=project,
        env={**env, "VIRTUAL_ENV": str(DEV_BIN.parent)},
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
    if not find_python("3.11"):
        pytest.skip("no Python 3.11 here for the venv manager")
    tmp = tmp_path_factory.mktemp("tooling-venv")
    env = environment(tmp)
    dst = tmp / "venv-doctor"
    generate(
        template, dst, env, project_name="Venv Doc", env_manager="venv", jupyter_kernel="false"
    )
    return dst, env


@pytest.mark.slow
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


@pytest.mark.slow
@posix_only("`make lock` with the Makefile's POSIX shell recipes")
def test_make_lock_is_the_tool_writing_the_lock(
    uv_project: tuple[Path, dict[str, str]], venv_project: tuple[Path, dict[str, str]]
) -> None:
    """`make lock` calls the tool (the one writer of each lock file): uv re-resolves uv.lock;
    venv records the environment as it is, with the header the set-up writes."""
    project, env = uv_project
    proc = timed("make lock (uv)", ["make", "--no-print-directory", "lock"], cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tools/envtool lock" in proc.stdout and "uv lock wrote uv.lock" in proc.stdout
    project, env = venv_project
    lock = project / "requirements.lock"
    lock.write_text("numpy==0.0.1\n", encoding="utf-8")  # stale
    proc = timed("make lock (venv)", ["make", "--no-print-directory", "lock"], cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = lock.read_text(encoding="utf-8")
    assert text.startswith("# Exact versions that worked (pip freeze)")
    assert re.search(r"(?m)^numpy==\d+\.\d+", text) and "numpy==0.0.1" not in text
    code, report = doctor(project, env, "venv after make lock")
    assert code == 0 and "ok    installed versions match the lock file" in report
