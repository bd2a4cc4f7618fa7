"""Issue 12: the first run must not break. Next steps that work as printed, nothing of the user's
lost (signals, a foreign destination, an existing .venv or kernel), fixes that fix.

Everything runs through the real `copier copy --trust` CLI (or the project's own tools/envtool),
with a PATH like a new user's: no dev venv, uv only where a test puts it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import (
    bundled_pip,
    copier_cli,
    dev_tool,
    env_without_dev_venv,
    generated_files_in_place,
    output,
    pip_index_url,
    posix_only,
    pty_run,
    render,
    run_captured,
    run_retry,
    tool_bin,
)

# bash, make, python3, pseudo-terminals and POSIX signals (the Windows shells are not here).
pytestmark = posix_only("bash, make, a pty and POSIX signals")
LINUX_ONLY = pytest.mark.skipif(sys.platform != "linux", reason="finds the hook's pid in /proc")
HERE_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SMALL = {"ml_framework": "none", "example": "none", "python_version": HERE_VERSION}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("firstrun")


def copy_args(src: Path, dst: Path, **answers: str) -> list[str]:
    args = [*copier_cli(), "copy", "--trust", "--defaults"]
    for key, value in answers.items():
        args += ["--data", f"{key}={value}"]
    return [*args, str(src), str(dst)]


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                child = int(stat.parent.name)
                found.append(child)
                todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# ---------------------------------------------------------------- signals during the env step


@pytest.mark.slow
@LINUX_ONLY
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_during_env_step_keeps_the_project(template: Path, work: Path, signame: str) -> None:
    """The signal goes to the set-up itself while uv installs: copier must see exit 0 (else it
    deletes the project), the failure and the retry command are printed, and the retry works.
    A stand-in for uv (named as such) runs real uv for everything but `uv sync`, which says it
    started and then hangs like a slow download: the signal always lands mid-install (with the
    real, fast install it sometimes came after the set-up had finished, and proved nothing)."""
    dst = work / f"signal-{signame}"
    stand_in, started = work / f"bin-hanging-uv-{signame}", work / f"sync-started-{signame}"
    stand_in.mkdir()
    (stand_in / "uv").write_text(
        f'#!/bin/sh\nif [ "$1" = sync ]; then touch "{started}"; exec sleep 300; fi\n'
        f'exec "{dev_tool("uv")}" "$@"\n',
        encoding="utf-8",
    )
    (stand_in / "uv").chmod(0o755)
    proc = subprocess.Popen(
        copy_args(template, dst, project_name=f"Sig {signame}", env_manager="uv", **SMALL),
        env=env_without_dev_venv(stand_in),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "".join(lines)
    hook = next(
        p
        for p in children(proc.pid)
        if "tools/envtool setup" in cmdline(p) and "--from-copier" in cmdline(p)
    )
    os.kill(hook, getattr(signal, signame))
    assert proc.wait(timeout=120) == 0, "".join(lines)
    reader.join(timeout=10)
    text = "".join(lines)
    assert "FAILED at step 'install the project and its dependencies': " in text, text
    assert f"interrupted ({signame})" in text, text
    generated_files_in_place(dst)
    assert (dst / ".git").is_dir()
    proc2 = run_retry(text, env_without_dev_venv(tool_bin(work, "uv")))
    assert proc2.returncode == 0, proc2.stdout
    assert "Environment ready (uv)" in proc2.stdout


@pytest.mark.slow
def test_signal_while_the_venv_is_half_made_leaves_no_venv_and_the_retry_works(
    tmp_path: Path,
    template: Path,
) -> None:
    """The deterministic case of the race above: SIGTERM lands while `uv venv` has made .venv but
    not yet its pyvenv.cfg. The half-made .venv is this run's own, so it goes; left behind, the
    retry could not prove it is this project's and would refuse it (seen in CI)."""
    project = render(template, tmp_path / "half", env_manager="uv", **SMALL)
    stand_in = tmp_path / "bin-slow-uv"
    stand_in.mkdir()
    real_uv = dev_tool("uv")
    # A stand-in for uv (named as such): real uv for everything but `uv venv`, which starts the
    # folder and then hangs, like a slow disk.
    (stand_in / "uv").write_text(
        f'#!/bin/sh\nif [ "$1" = venv ]; then mkdir -p .venv/lib; exec sleep 300; fi\n'
        f'exec "{real_uv}" "$@"\n',
        encoding="utf-8",
    )
    (stand_in / "uv").chmod(0o755)
    env = env_without_dev_venv(stand_in)
    proc = subprocess.Popen(
        ["python3", str(project / "tools" / "envtool"), "setup"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (project / ".venv" / "lib").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (project / ".venv" / "lib").is_dir(), "the stand-in never started .venv"
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=60)[0]
    assert "FAILED at step 'create the environment': interrupted (SIGTERM)" in text, text
    assert not (project / ".venv").exists(), text
    proc2 = run_retry(text, env_without_dev_venv(tool_bin(tmp_path, "uv")))
    assert proc2.returncode == 0, proc2.stdout
    assert "Environment ready (uv)" in proc2.stdout


# ---------------------------------------------------------------- a foreign destination


def test_non_empty_folder_is_refused_before_anything_is_written(
    template: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "README.md").write_text("my notes\n", encoding="utf-8")
    (dst / "Makefile").write_text("all:\n\techo mine\n", encoding="utf-8")
    before = sorted(p.name for p in dst.iterdir())
    data_file = tmp_path / "answers.yml"
    data_file.write_text("env_manager: venv\n", encoding="utf-8")
    for extra in ([], ["--data", "project_name=Mine"], ["--data-file", str(data_file)]):
        proc = run_captured(
            [*copier_cli(), "copy", "--trust", "--defaults", *extra, template, dst],
            env=env_without_dev_venv(None),
        )
        text = output(proc)
        assert proc.returncode == 1, text
        assert (
            "already holds files that are not a copier-mlops project (Makefile, README.md)" in text
        )
        assert "Nothing was written" in text and f"{dst}-ml" in text
        assert "Traceback" not in text
        assert sorted(p.name for p in dst.iterdir()) == before
        assert (dst / "README.md").read_text(encoding="utf-8") == "my notes\n"


def test_empty_folder_or_bare_git_repository_is_accepted(template: Path, tmp_path: Path) -> None:
    for name, setup in (("empty", []), ("bare-git", ["git", "init", "-q"])):
        dst = tmp_path / name
        dst.mkdir()
        if setup:
            subprocess.run(setup, cwd=dst, check=True)
        proc = run_captured(
            [*copier_cli(), "copy", "--trust", "--defaults", "--data", "create_env=false",
             "--data", "git_init=false", template, dst],
            env=env_without_dev_venv(None),
        )  # fmt: skip
        assert proc.returncode == 0, output(proc)
        assert (dst / "pyproject.toml").is_file()


def test_recopy_of_a_generated_project_still_works(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "proj", **SMALL)
    proc = run_captured(
        [*copier_cli(), "recopy", "--trust", "--defaults", "--overwrite", "--data",
         "description=Changed", dst],
        env=env_without_dev_venv(None),
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    assert "Changed" in (dst / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- what is not provably ours


def run_setup(project: Path, env: dict[str, str], cwd: Path | None = None) -> tuple[int, str]:
    proc = run_captured(
        ["python3", project / "tools" / "envtool", "setup"], cwd=cwd or project, env=env
    )
    print(output(proc)[-6000:])
    return proc.returncode, output(proc)


@pytest.mark.slow
def test_foreign_venv_is_never_wiped_and_the_fix_works(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "proj", env_manager="uv", **SMALL)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", project / ".venv"], check=True)
    marker = project / ".venv" / "someone-elses-packages"
    marker.write_text("keep me", encoding="utf-8")
    env = env_without_dev_venv(tool_bin(tmp_path, "uv"))
    code, text = run_setup(project, env)
    assert code == 1, text
    assert "exists but is not this project's environment" in text
    assert "fix: move it away (`mv .venv .venv.old`)" in text
    assert marker.read_text(encoding="utf-8") == "keep me"
    # Follow the fix literally, then the retry command.
    subprocess.run(["bash", "-c", "mv .venv .venv.old"], cwd=project, check=True)
    code, text = run_setup(project, env)
    assert code == 0, text
    assert (project / ".venv.old" / "someone-elses-packages").is_file()
    # Our own .venv (prompt = slug) is reused by the next run, not refused.
    code, text = run_setup(project, env)
    assert code == 0 and "reusing .venv" in text, text


@pytest.mark.slow
def test_another_projects_kernel_is_not_repointed(template: Path, tmp_path: Path) -> None:
    jupyter = tmp_path / "jupyter"
    other = jupyter / "kernels" / "kern-demo" / "kernel.json"
    other.parent.mkdir(parents=True)
    spec = {"argv": ["/elsewhere/.venv/bin/python", "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"], "display_name": "Kern Demo (other)", "language": "python"}  # fmt: skip
    other.write_text(json.dumps(spec), encoding="utf-8")
    env = {**env_without_dev_venv(tool_bin(tmp_path, "uv")), "JUPYTER_DATA_DIR": str(jupyter)}
    dst = tmp_path / "kern-demo"
    proc = run_captured(
        copy_args(template, dst, project_name="Kern Demo", env_manager="uv",
                  jupyter_kernel="true", **SMALL),
        env=env,
    )  # fmt: skip
    text = output(proc)
    assert proc.returncode == 0, text
    assert json.loads(other.read_text(encoding="utf-8")) == spec  # untouched
    ours = json.loads((jupyter / "kernels" / "kern-demo-2" / "kernel.json").read_text("utf-8"))
    assert ours["argv"][0] == str(dst / ".venv" / "bin" / "python")
    assert "the name kern-demo belongs to another environment" in text
    # Re-running the set-up refreshes our own kernel, still without touching the other one.
    code, text = run_setup(dst, env)
    assert code == 0, text
    assert "kern-demo-2" in text and not (jupyter / "kernels" / "kern-demo-3").exists()
    assert json.loads(other.read_text(encoding="utf-8")) == spec


# ---------------------------------------------------------------- fixes that fix


@pytest.mark.slow
@pytest.mark.parametrize("manager", ["venv", "uv"])
def test_unreachable_index_is_named_not_blamed_on_a_package(
    template: Path, tmp_path: Path, manager: str
) -> None:
    dst = tmp_path / f"offline-{manager}"
    # No retries: pip's five, with their back-off, took a minute for the same message. No pip
    # configuration: this machine's adds local indexes, which a user's does not have.
    env = env_without_dev_venv(
        tool_bin(tmp_path, "uv"), UV_HTTP_RETRIES="0", PIP_RETRIES="0", PIP_CONFIG_FILE=os.devnull
    )
    proc = run_captured(
        copy_args(template, dst, env_manager=manager,
                  package_index_url="http://127.0.0.1:9/simple", **SMALL),
        env=env,
    )  # fmt: skip
    text = output(proc)
    assert proc.returncode == 0, text
    assert "the package index could not be reached (" in text
    assert "http://127.0.0.1:9" in text.split("could not be reached (", 1)[1].splitlines()[0]
    assert "has no package" not in text and "hatchling'" not in text
    if manager == "venv":  # an old bundled pip's upgrade fails too, and the set-up goes on
        python = re.search(r"Python [\d.]+ at (\S+)", text)
        assert python, text
        bundled, upgrade = bundled_pip(python[1])
        assert (f"kept pip {bundled} (no newer pip on the index)" in text) is upgrade, text
    generated_files_in_place(dst)


@pytest.mark.slow
def test_missing_extra_dependency_fix_followed_literally(template: Path, tmp_path: Path) -> None:
    """The fix re-renders every file that names the bad requirement; then the retry works and
    the Dockerfile, tools/envtool.json and the tests no longer name it."""
    bad = "no-such-package-copier-mlops-xyz"
    dst = tmp_path / "bad extra (1)"
    env = env_without_dev_venv(tool_bin(tmp_path, "uv"))
    proc = run_captured(
        copy_args(template, dst, project_name="Bad Extra", env_manager="uv",
                  extra_dependencies=f"tqdm {bad}", **SMALL),
        env=env,
    )  # fmt: skip
    text = output(proc)
    assert proc.returncode == 0, text
    fix = next(line for line in text.splitlines() if line.strip().startswith("fix:"))
    assert "extra_dependencies" in fix and "recopy" in fix, fix
    command = fix.split("re-render them without it (or with the right name), then commit: ")[1]
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("pyproject.toml", "tools/envtool.json", "Dockerfile",
                 "tests/test_bad_extra.py"):  # fmt: skip
        content = (dst / name).read_text(encoding="utf-8")
        assert bad not in content and bad.replace("-", "_") not in content, name
        # The Dockerfile's probe reads tools/envtool.json (--config): it names no package itself.
        assert ("tqdm" in content) == (name != "Dockerfile"), name
    proc = run_retry(text, env)
    assert proc.returncode == 0, proc.stdout
    assert "Environment ready (uv)" in proc.stdout
    check = subprocess.run(
        [dst / ".venv" / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=dst, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout[-3000:]


def test_wrongly_typed_config_fails_before_any_install(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "proj", env_manager="venv", **SMALL)
    path = project / "tools" / "envtool.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["dependencies"] = ["numpy"]  # strings instead of {"req": ..., "import": ...}
    data["python_version"] = 3.12
    path.write_text(json.dumps(data), encoding="utf-8")
    code, text = run_setup(project, env_without_dev_venv(None))
    assert code == 1, text
    assert "FAILED at step 'read tools/envtool.json'" in text
    assert '"dependencies"[0] must be an object with the keys req, name (optional: import' in text
    assert '"python_version" must look like "3.12" (it is 3.12)' in text
    assert "AttributeError" not in text and not (project / ".venv").exists()


def test_envtool_run_from_another_folder_works_on_its_own_project(
    template: Path, tmp_path: Path
) -> None:
    project = render(template, tmp_path / "proj", env_manager="venv", **SMALL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = project / "tools" / "envtool.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"venv"', '"bogus"'), "utf-8")
    code, text = run_setup(project, env_without_dev_venv(None), cwd=elsewhere)
    assert code == 1, text
    # It read the project's own config (not "tools/envtool.json is missing in elsewhere").
    assert f"{project}/tools/envtool.json is not what tools/envtool expects" in text
    assert '"env_manager" must be one of' in text


def test_after_copy_cd_line_works_for_a_path_with_spaces_and_parens(
    template: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "my proj (1)"
    proc = run_captured(
        copy_args(template, dst, create_env="false", git_init="false", **SMALL),
        env=env_without_dev_venv(None),
        cwd=tmp_path,
    )
    text = output(proc)
    assert proc.returncode == 0, text
    cd = next(line.strip() for line in text.splitlines() if line.strip().startswith("cd "))
    done = subprocess.run(
        ["bash", "-c", f"{cd} && pwd"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == str(dst), done.stderr


# ---------------------------------------------------------------- interactive runs in a pty


def drive(args: list[str], env: dict[str, str], answers: dict[bytes, bytes], cwd: Path) -> str:
    """Run `args` on a pseudo-terminal; type answers[prompt] once each prompt appears."""
    pending = dict(answers)

    def reply(seen: bytes) -> bytes | None:
        prompt = next((p for p in pending if p in seen), None)
        return None if prompt is None else pending.pop(prompt)

    return pty_run(args, reply, env=env, cwd=cwd, timeout=300)[1]


def test_interactive_copy_into_a_foreign_folder_is_refused(template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "README.md").write_text("my notes\n", encoding="utf-8")
    text = drive([*copier_cli(), "copy", "--trust", str(template), str(dst)], env_without_dev_venv(None),
                 {}, tmp_path)  # fmt: skip
    assert "already holds files that are not a copier-mlops project (README.md)" in text, text
    assert "project_name" not in text and "Traceback" not in text  # refused before any question
    assert [p.name for p in dst.iterdir()] == ["README.md"]


@pytest.mark.slow
def test_accepted_fallback_makes_every_file_match_the_real_environment(
    template: Path, tmp_path: Path
) -> None:
    """uv missing, the user picks the plain .venv: Makefile, README, envtool.json, the
    answers file and the after-copy message all say venv, and its next steps work."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**env_without_dev_venv(tool_bin(tmp_path)), "HOME": str(home)}  # no uv anywhere
    env["PYENV_ROOT"] = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    dst = tmp_path / "fallback"
    args = copy_args(template, dst, project_name="Fall Back", env_manager="uv", **SMALL)
    text = drive(args, env, {b"What now?": b"\r"}, tmp_path)  # Enter: the first choice, venv
    assert "Use a plain .venv with pip instead" in text, text
    assert "switching the project to venv" in text, text
    assert "Environment ready (venv)" in text, text
    config = json.loads((dst / "tools" / "envtool.json").read_text(encoding="utf-8"))
    assert config["env_manager"] == "venv"
    assert "env_manager: venv" in (dst / ".copier-answers.yml").read_text(encoding="utf-8")
    assert (dst / "requirements.txt").is_file() and (dst / "requirements.lock").is_file()
    for name in ("Makefile", "README.md"):
        content = (dst / name).read_text(encoding="utf-8")
        assert "uv sync" not in content and "uv run" not in content, name
    assert not (dst / "src" / "fall_back" / "doctor.py").exists()  # the doctor is the tool's
    assert config["commands"]["test"] == "python -m pytest"  # venv's commands, from copier.yml
    tail = text.rsplit("Next:", 1)[1]
    assert "source .venv/bin/activate" in tail and "uv " not in tail, tail
    status = subprocess.run(["git", "status", "--porcelain"], cwd=dst, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert status.stdout == "", status.stdout
    for step in ("make test", "make doctor", "python3 tools/envtool setup",
                 "source .venv/bin/activate && python -m pytest -q"):  # fmt: skip
        done = subprocess.run(["bash", "-c", step], cwd=dst, env=env, capture_output=True,
                              text=True)  # fmt: skip
        assert done.returncode == 0, f"{step}: {done.stdout[-3000:]}{done.stderr[-2000:]}"


@pytest.mark.slow
def test_corrupt_lock_doctor_advice_followed_literally(template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "corrupt-lock"
    env = env_without_dev_venv(tool_bin(tmp_path, "uv"))
    proc = run_captured(copy_args(template, dst, env_manager="uv", **SMALL), env=env)
    assert proc.returncode == 0 and "Environment ready (uv)" in output(proc), output(proc)
    (dst / "uv.lock").write_text("version = 1\n<<<<<<< Updated upstream\n", encoding="utf-8")
    doctor = run_captured(["make", "doctor"], cwd=dst, env=env)
    text = output(doctor)
    assert doctor.returncode != 0, text  # make says 2 when the doctor says 1
    assert "uv.lock is corrupt (not valid TOML" in text, text
    fix = next(line for line in text.splitlines() if "mv uv.lock uv.lock.broken" in line)
    steps = fix[fix.index("mv uv.lock") :]
    move, _, rest = steps.partition(", then: ")
    first, _, second = rest.split("   (or:")[0].partition(", then ")
    done = subprocess.run(["bash", "-c", f"{move} && {first} && {second}"], cwd=dst, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (dst / "uv.lock.broken").is_file()
    doctor = run_captured(["make", "doctor"], cwd=dst, env=env)
    assert doctor.returncode == 0, output(doctor)


# ---------------------------------------------------------------- issue 20: fixes that fix


def fix_steps(fix: str) -> str:
    """A printed fix as the shell line the user types: its steps (", then:" / ", then") in
    order, without the remarks in parentheses."""
    return re.sub(r",? then:? ", " && ", fix.split("   (")[0])


@pytest.mark.slow
@pytest.mark.parametrize("manager", ["uv", "poetry"])
def test_corrupt_lock_setup_gives_the_doctors_fix_and_it_works(
    template: Path, tmp_path: Path, manager: str
) -> None:
    """The set-up stops on a corrupt lock with the doctor's own fix (not "check the package
    names", not `poetry lock` on the broken file); typed as printed, the next set-up succeeds."""
    index = {"package_index_url": pip_index_url()} if manager == "poetry" else {}
    project = render(template, tmp_path / f"lock-{manager}", env_manager=manager, **SMALL, **index)
    lock = project / f"{manager}.lock"
    lock.write_text("version = 1\n<<<<<<< Updated upstream\n", encoding="utf-8")
    env = env_without_dev_venv(tool_bin(tmp_path, manager))
    setup = ["python3", "tools/envtool", "setup"]
    text = output(run_captured(setup, project, env))
    assert (
        f"FAILED at step 'install the project and its dependencies': {lock.name} is corrupt" in text
    ), text
    assert "check the package names" not in text and "if poetry.lock is out of date" not in text
    fix = next(line.strip()[5:] for line in text.splitlines() if line.strip().startswith("fix: "))
    assert fix.startswith(f"mv {lock.name} {lock.name}.broken, then: {manager} lock, then "), fix
    doctor = output(run_captured(["python3", "tools/envtool", "doctor"], project, env))
    assert f"fix: {fix}" in doctor, doctor  # the same fix, word for word
    done = subprocess.run(["bash", "-c", fix_steps(fix)], cwd=project, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    again = run_captured(setup, project, env)
    assert again.returncode == 0 and f"Environment ready ({manager})" in again.stdout, output(again)


CLOSED_INDEX = "http://127.0.0.1:9/simple"  # port 9 (discard): nothing listens here


@pytest.mark.slow
@pytest.mark.parametrize(
    ("manager", "setting"),
    [
        ("venv", "requirements.txt's first line `--index-url <URL>`"),
        ("uv", "pyproject.toml's [[tool.uv.index]]"),
        ("poetry", "pyproject.toml's [[tool.poetry.source]]"),
    ],
)
def test_unreachable_index_is_named_with_its_setting(
    template: Path, tmp_path: Path, manager: str, setting: str
) -> None:
    """A closed local port as the index: the failure names the index and where to set another,
    never a package (pip in build isolation only said "no package 'hatchling'")."""
    project = render(template, tmp_path / f"index-{manager}", env_manager=manager,
                     package_index_url=CLOSED_INDEX, **SMALL)  # fmt: skip
    env = env_without_dev_venv(
        tool_bin(tmp_path, *([manager] if manager != "venv" else [])),
        PIP_CONFIG_FILE=os.devnull, PIP_RETRIES="0", UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        POETRY_CACHE_DIR=str(tmp_path / "poetry-cache"),
    )  # fmt: skip
    env.pop("PIP_FIND_LINKS", None)  # this machine's wheels would stand in for the index
    proc = run_captured(["python3", "tools/envtool", "setup"], project, env)
    text = output(proc)
    assert proc.returncode == 1, text
    failed = next(line for line in text.splitlines() if line.startswith("FAILED at step"))
    assert "the package index could not be reached" in failed and "127.0.0.1:9" in failed, text
    assert "no package" not in text.split("FAILED at step", 1)[1], text
    assert f"To use another index, set it in {setting}" in text, text


@pytest.mark.slow
@pytest.mark.parametrize("manager", ["uv", "poetry"])
def test_tool_found_beside_copier_is_found_by_every_later_command(
    template: Path, tmp_path: Path, manager: str
) -> None:
    """copier's own environment has uv/Poetry (like a pipx or venv copier): the set-up finds it
    there and records where (tools/envtool-found.txt, git-ignored); the retry, the doctor, the
    lock and `make` find it again from a new user's shell, whose PATH lacks it."""
    index = {"package_index_url": pip_index_url()} if manager == "poetry" else {}
    dst = tmp_path / f"beside-{manager}"
    env = env_without_dev_venv(None)  # no uv/poetry on PATH: only beside copier's Python
    beside = [sys.executable, "-m", "copier"]  # the dev venv's copier: uv and poetry beside it
    args = [*beside, *copy_args(template, dst, env_manager=manager, **SMALL, **index)[3:]]
    proc = run_captured(args, env=env)
    assert f"Environment ready ({manager})" in output(proc), output(proc)
    found = (dst / "tools" / "envtool-found.txt").read_text(encoding="utf-8")
    assert found == f"{manager}={dev_tool(manager)}\n"
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=dst,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "envtool-found" not in status.stdout, status.stdout  # never committed
    for step in ("python3 tools/envtool setup", "python3 tools/envtool doctor",
                 "python3 tools/envtool lock", "make doctor", "make test"):  # fmt: skip
        done = subprocess.run(["bash", "-c", step], cwd=dst, env=env, capture_output=True,
                              text=True)  # fmt: skip
        text = done.stdout + done.stderr
        assert done.returncode == 0 and "is not installed" not in text, f"{step}: {text[-3000:]}"
