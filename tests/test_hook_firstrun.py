"""Issue 12: the first run must not break. Next steps that work as printed, nothing of the user's
lost (signals, a foreign destination, an existing .venv or kernel), fixes that fix.

Everything runs through the real `copier copy --trust` CLI (or the project's own tools/envsetup),
with a PATH like a new user's: no dev venv, uv only where a test puts it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import render, run_captured
from tests.test_hook import (
    copier_cli,
    generated_files_in_place,
    hook_env,
    output,
    retry_line,
    run_retry,
    tool_bin,
)

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
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_during_env_step_keeps_the_project(
    template: Path, work: Path, signame: str
) -> None:
    """The signal goes to the hook itself while uv installs: copier must see exit 0 (else it
    deletes the project), the failure and the retry command are printed, and the retry works."""
    dst = work / f"signal-{signame}"
    env = hook_env(tool_bin(work, "uv"))
    proc = subprocess.Popen(
        copy_args(template, dst, project_name=f"Sig {signame}", env_manager="uv", **SMALL),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    hook = None
    while time.monotonic() < deadline and hook is None:
        time.sleep(0.05)
        if any("] create the environment" in line for line in lines):
            hook = next(
                (p for p in children(proc.pid) if "__main__.py env --from-copier" in cmdline(p)),
                None,
            )
    assert hook is not None, "".join(lines)
    os.kill(hook, getattr(signal, signame))
    assert proc.wait(timeout=120) == 0, "".join(lines)
    reader.join(timeout=10)
    text = "".join(lines)
    assert f"interrupted ({signame})" in text, text
    generated_files_in_place(dst)
    assert (dst / ".git").is_dir()
    proc2 = run_retry(text, env)
    assert proc2.returncode == 0, proc2.stdout
    assert "Environment ready (uv)" in proc2.stdout
