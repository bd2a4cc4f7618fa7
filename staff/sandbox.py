"""Run untrusted student code confined by bubblewrap (Debian's `bubblewrap`).

Inside the sandbox a command sees the system read-only, its own folder (the "box": the
student's copy and its private package cache) read-write, a private /tmp and HOME, no network
(its own empty network namespace), no other process, and none of: the staff's home, /root,
/home, /run, the folders of submissions and checks (other students' copies). It runs as an
unprivileged user: as root, a user id of its own per parallel slot (so a process limit is a
limit per student); otherwise as the staff user inside a user namespace. Limits (prlimit):
processes, file size, address space; the wall-clock limit is the caller's timeout, after which
the whole sandbox is killed (its process namespace dies with it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_UID_BASE = 60000  # slot n runs as uid/gid 60000 + n (as root); nobody else uses them
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


class SandboxUnavailable(Exception):
    """No working sandbox on this machine: why, in words staff can act on."""


@dataclass
class Limits:
    """Per-process limits inside the sandbox (prlimit), and the wall-clock limit per command."""

    processes: int = 256
    file_size_mb: int = 1024
    memory_mb: int = 4096  # address space per process


@dataclass
class Sandbox:
    """How to start a confined command; `unsafe` runs it directly (staff said they trust it)."""

    bwrap: str | None
    hidden: list[Path] = field(default_factory=list)  # folders replaced by an empty tmpfs
    readable: list[Path] = field(default_factory=list)  # bound back read-only (tools, Pythons)
    limits: Limits = field(default_factory=Limits)
    unsafe: bool = False
    running: set[subprocess.Popen[bytes]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def command(self, box: Path, cwd: Path, env: dict[str, str], slot: int) -> list[str]:
        """The argv prefix that runs a command in `cwd` (inside `box`) with `env`."""
        lim = self.limits
        prlimit = [
            "prlimit",
            f"--nproc={lim.processes}",
            f"--fsize={lim.file_size_mb * 2**20}",
            f"--as={lim.memory_mb * 2**20}",
            "--",
        ]
        if self.unsafe or not self.bwrap:
            return prlimit
        cmd = [self.bwrap, "--die-with-parent", "--new-session"]
        root = os.geteuid() == 0
        if root:  # no user namespace: drop to a real unprivileged uid inside (setpriv, below)
            cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
            cmd += ["--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            cmd += ["--unshare-all"]
        cmd += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in ("/tmp", "/var/tmp", "/dev/shm"):  # writable by anyone, as usual (1777):
            cmd += ["--perms", "01777", "--tmpfs", path]  # the student's user is not root
        for path in ("/root", "/home", "/run", *map(str, self.hidden)):
            cmd += ["--tmpfs", path]
        # Mount points' parents, made first as traversable folders: bwrap would make them
        # root's, mode 700, and the student's user could not reach a Python under /tmp.
        for folder in self.readable:  # never one holding a hidden folder: it would show it
            if not any(h.is_relative_to(folder) for h in self.hidden):
                for parent in reversed(folder.parents[:-1]):
                    cmd += ["--dir", str(parent)]
                cmd += ["--ro-bind", str(folder), str(folder)]
        for parent in reversed(box.parents[:-1]):
            cmd += ["--dir", str(parent)]
        cmd += ["--bind", str(box), str(box), "--chdir", str(cwd)]
        cmd += ["--clearenv"]
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        cmd.append("--")
        if root:
            uid = str(SANDBOX_UID_BASE + slot)
            cmd += ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]
            cmd += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return [*prlimit, *cmd]

    def owner(self, slot: int) -> int | None:
        """The uid the sandbox of `slot` runs as, when it differs from ours (root only)."""
        return SANDBOX_UID_BASE + slot if os.geteuid() == 0 and not self.unsafe else None

    def run(
        self,
        argv: Sequence[str],
        *,
        box: Path,
        cwd: Path,
        env: dict[str, str],
        slot: int,
        timeout: float,
        log: Path,
    ) -> tuple[str, float]:
        """Run argv confined; its output into `log`. ('ok' | 'fail' | 'timeout', seconds)."""
        started = time.monotonic()
        full_env = env if (self.bwrap and not self.unsafe) else {**os.environ, **env}
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [*self.command(box, cwd, env, slot), *argv],
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: a timeout kills all of it
            )
            with self.lock:
                self.running.add(proc)
            try:
                proc.wait(timeout=max(timeout, 0.1))
                status = "ok" if proc.returncode == 0 else "fail"
            except subprocess.TimeoutExpired:
                kill(proc)
                status = "timeout"
            finally:
                with self.lock:
                    self.running.discard(proc)
            seconds = time.monotonic() - started
            note = f"timed out after {timeout:.0f}s" if status == "timeout" else proc.returncode
            out.write(f"\n[exit: {note}; {seconds:.1f}s]\n".encode())
        return status, seconds

    def stop_all(self) -> None:
        """Kill every running sandbox (Ctrl-C, SIGTERM): their results are not recorded."""
        with self.lock:
            procs = list(self.running)
        for proc in procs:
            kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group; bubblewrap's process namespace takes every process with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def tool_folders(tools: Iterable[str]) -> list[Path]:
    """Folders to bind back read-only: the Python running this, pyenv's, and each tool's."""
    found = {Path(sys.base_prefix), Path(sys.prefix)}
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    if Path(pyenv, "versions").is_dir():
        found.add(Path(pyenv))
    for tool in tools:
        path = shutil.which(tool)
        if path:
            found.add(Path(path).resolve().parent)
            found.add(Path(path).parent)
            root = Path(path).resolve().parents[1]  # a venv's or conda's: the tool's libraries
            if (root / "pyvenv.cfg").is_file() or (root / "conda-meta").is_dir():
                found.add(root)
    return sorted(p for p in found if p.is_dir())


def probe(bwrap: str | None) -> None:
    """Start a trivial sandboxed command; SandboxUnavailable says why it cannot work here."""
    if not bwrap or not shutil.which(bwrap):
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    if not shutil.which("prlimit") or (os.geteuid() == 0 and not shutil.which("setpriv")):
        raise SandboxUnavailable("prlimit/setpriv (util-linux) are missing: install util-linux")
    box = Path("/")
    sandbox = Sandbox(bwrap)
    argv = [*sandbox.command(box, box, {"PATH": "/usr/bin:/bin"}, slot=0), "true"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot create its namespaces here ({proc.stderr.strip()}): user "
            "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1), or a "
            "container forbids them"
        )
