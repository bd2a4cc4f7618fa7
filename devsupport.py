"""Development helpers that tests/ and bench/ share (neither imports the other): copier.yml's
managers, the package index pip uses, the set-up's JSON result, and starting and stopping the
servers they run (on 127.0.0.1, in a process group of their own). The buildah driver that builds
the generated Dockerfiles is imagebuild.py."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, AnyStr

import yaml
from envtool.config import RESULT_FILE  # template/tools, on sys.path through the editable install

ROOT = Path(__file__).resolve().parent


def copier_config() -> dict[str, Any]:
    """The template's copier.yml, parsed (the questions are its keys)."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    return config


def manager_choices() -> list[str]:
    """The env_manager choice values of copier.yml: the one list of managers."""
    choices = copier_config()["env_manager"]["choices"]
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def read_result(project: Path) -> dict[str, Any]:
    """The set-up's machine-readable result in a generated project ({} when there is none)."""
    try:
        result: dict[str, Any] = json.loads((project / RESULT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return result


def pip_index_url() -> str:
    """The simple-index URL pip is configured with (pip's own default when none is set)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        out.stdout.strip()
        if out.returncode == 0 and out.stdout.strip()
        else "https://pypi.org/simple"
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the servers tests and benches start listen there only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[AnyStr], grace: float = 20) -> bool:
    """SIGTERM to `proc`'s process group, SIGKILL to what is left of it `grace` seconds after the
    SIGTERM (one budget for the leader and its group together); True when the whole group ended
    on SIGTERM (a server's workers included)."""
    deadline = time.monotonic() + grace
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    while True:
        proc.poll()  # reap the leader once it ends: as a zombie it would still count in the group
        try:
            os.killpg(proc.pid, 0)  # the group outlives its leader while children run
        except ProcessLookupError:
            proc.wait()
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return False


@dataclasses.dataclass
class Server:
    """A server process the tests or a bench started, and the file its output goes to (a file,
    not a pipe: a chatty server never blocks on a pipe nobody reads)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the server has printed so far (its log file's text)."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process as Ctrl-C does, through its `finally` blocks, so that the
    servers `started` ran are stopped with it (Python's default for SIGTERM skips them)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@contextlib.contextmanager
def started(
    cmd: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run a server `cmd` in a process group of its own; on exit stop the whole group, and
    raise if any of it needed SIGKILL (a server must stop on SIGTERM)."""
    with tempfile.TemporaryDirectory(prefix="server-") as folder:
        log = Path(folder) / "output.txt"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield Server(proc, log)
        finally:
            if not stop_group(proc):
                raise RuntimeError(f"{cmd[:3]}: processes outlived SIGTERM (killed)")


def wait_for_http(url: str, server: Server, timeout: float = 300) -> int:
    """The first HTTP status `url` answers with, waiting for `server` to come up; RuntimeError
    with its output when it exits first, TimeoutError when it never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited ({server.proc.returncode}):\n{server.output()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
