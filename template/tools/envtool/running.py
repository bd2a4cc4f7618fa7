"""Running tools: argument lists (never a shell), their output streamed or captured, and the
failure the user can fix (ToolError)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .shell import WINDOWS

TAIL_LINES = 25
Cmd = Sequence["str | os.PathLike[str]"]


class ToolError(Exception):
    """A failure the user can fix: what went wrong, why, and what to do about it."""

    def __init__(self, what: str, why: str = "", fix: str = "") -> None:
        super().__init__(what)
        self.what, self.why, self.fix = what, why, fix
        self.output = why  # a failed command's whole output (why keeps only its tail)


def say(text: str = "") -> None:
    """Print a line; never fail (after SIGHUP the terminal is gone, and the tool must go on)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def display(cmd: Cmd) -> str:
    """A command as the user could type it (POSIX quoting; the tool itself never uses a shell)."""
    return shlex.join(str(c) for c in cmd)


def clean_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """The environment for tools: without the caller's active venv, which would capture installs."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", *drop)}
    return {**env, **(extra or {})}


def run(
    cmd: Cmd,
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    what: str = "",
    fix: str = "",
    echo: bool = True,
) -> str:
    """Run `cmd` (an argument list, never a shell), stream its output indented, return it. On a
    non-zero exit raise ToolError with the tail of the output as the reason."""
    args = [str(c) for c in cmd]
    say(f"  $ {display(args)}")
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, env=dict(env) if env is not None else clean_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace",
        )  # fmt: skip
    except OSError as exc:
        raise ToolError(what or f"could not start {args[0]}", why=str(exc), fix=fix) from exc
    try:
        for line in proc.stdout or []:
            lines.append(line.rstrip("\n"))
            if echo:
                say(f"    {lines[-1]}")
        code = proc.wait()
    except BaseException:  # a signal or Ctrl-C: stop the tool too, then report
        proc.kill()
        proc.wait()
        raise
    if code:
        what = what or f"`{display(args)}` failed (exit status {code})"
        error = ToolError(what, "\n".join(lines[-TAIL_LINES:]), fix)
        error.output = "\n".join(lines)
        raise error
    return "\n".join(lines)


def stdout_of(cmd: Cmd, cwd: Path) -> str:
    """The output of a command that prints data (a lock to write); ToolError when it fails."""
    say(f"  $ {display(cmd)}")
    code, out, err = query(cmd, cwd, timeout=900)
    if code:
        raise ToolError(f"`{display(cmd)}` failed (exit status {code})", why=err.strip()[-3000:])
    return out


def query(
    cmd: Cmd, cwd: Path | None = None, timeout: float = 300, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command run quietly (`env`: variables on top of the
    tool's clean environment); 127 when it cannot run or times out."""
    try:
        out = subprocess.run(
            [str(c) for c in cmd], cwd=cwd,
            env=clean_env({"NO_COLOR": "1", "UV_NO_PROGRESS": "1", **(env or {})}),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8",
            errors="replace", timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:  # SubprocessError: the timeout
        return 127, "", str(exc)
    return out.returncode, out.stdout, out.stderr


def capture(cmd: Cmd, cwd: Path | None = None, timeout: float = 60) -> str | None:
    """stdout of a quick query command, or None when it cannot run or fails."""
    code, out, _ = query(cmd, cwd, timeout)
    return out if code == 0 else None


def python_version_of(python: Path | str) -> str | None:
    """`major.minor.micro` of an interpreter, or None when it does not run."""
    out = capture([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    return out.strip() if out else None


def install_hint(version: str) -> str:
    """How to get Python `version` on this kind of machine."""
    hints = [f"`{t} install {version}`" for t in ("pyenv", "uv python") if shutil.which(t[:5])]
    hints.append(
        f"`winget install Python.Python.{version}` or the installer from python.org"
        if WINDOWS
        else f"`brew install python@{version}` or the installer from python.org"
        if sys.platform == "darwin"
        else f"your system's package manager (e.g. `apt install python{version}-venv`)"
    )
    return f"install Python {version} with " + ", or ".join(hints)


def untracked(project: Path, *files: str) -> list[str]:
    """The files (of `files`; all without) that git does not track nor ignore; [] outside git."""
    out = capture(
        ["git", "ls-files", "-z", "--others", "--exclude-standard", "--", *files], project
    )
    found = [f for f in (out or "").split("\0") if f]
    return [f for f in files if f in found] if files else found  # in the order asked for
