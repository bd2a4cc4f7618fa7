"""Which tools the user has and how they type them (shell quoting, PATH, venv activation).
Standard library only: copier's extension imports it too (its next-step advice)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

CONFIG_FILE = Path("tools") / "envtool.json"  # the project's config (the extension reads it too)
WINDOWS = os.name == "nt"
# Where the README's generate command installs copier and uv (a venv that is not on PATH).
TOOL_BIN = Path.home() / ".copier-mlops" / ("Scripts" if WINDOWS else "bin")
# Where the set-up found uv or Poetry (one `name=path` line each; git-ignored): a later
# `python3 tools/envtool ...` or `make`, run by another Python than copier's, finds it again.
FOUND_FILE = Path("tools") / "envtool-found.txt"


def remember(project: Path, name: str, found: str) -> None:
    """Record where `name` was found (FOUND_FILE); a read-only folder only loses the record."""
    path = project / FOUND_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        kept = [line for line in lines if line.partition("=")[0] != name]
        path.write_text("\n".join([*kept, f"{name}={found}"]) + "\n", encoding="utf-8")
    except OSError:
        pass


def which(name: str, project: Path | None = None) -> str | None:
    """`name` on PATH, else beside the running Python (copier's own environment), else in the
    README's install folder, else where the set-up of `project` found it (FOUND_FILE, if it is
    still there): later commands, run by another Python, find what copier's run found."""
    for folder in (None, os.path.dirname(sys.executable), str(TOOL_BIN)):
        found = shutil.which(name, path=folder)
        if found:
            return found
    try:
        lines = (project / FOUND_FILE).read_text(encoding="utf-8").splitlines() if project else []
    except OSError:
        return None
    paths = [line.partition("=")[2] for line in lines if line.partition("=")[0] == name]
    return next((p for p in paths if shutil.which(p)), None)


def user_shell() -> str:
    """The user's shell family: posix, fish, powershell or cmd."""
    if WINDOWS:
        return "powershell" if os.environ.get("PSModulePath") else "cmd"
    return "fish" if Path(os.environ.get("SHELL", "")).name == "fish" else "posix"


def shell_quote(text: str, shell: str | None = None) -> str:
    """`text` as one word of the user's shell (POSIX quoting; double quotes on Windows)."""
    if (shell or user_shell()) in ("powershell", "cmd"):
        return f'"{text}"' if re.search(r'[\s&()^%!;,\'"]', text) else text
    return shlex.quote(text)


def command_for(name: str, found: str) -> str:
    """How the user types tool `name` (found at `found`) in a new terminal: the bare name when
    their PATH finds this very program, else its full path."""
    on_path = shutil.which(name)
    if on_path and os.path.realpath(on_path) == os.path.realpath(found):
        return name
    quoted = shell_quote(found)
    # PowerShell reads a quoted path as a string: `&` runs it.
    return f"& {quoted}" if quoted.startswith('"') and user_shell() == "powershell" else quoted


def path_line(folder: str, shell: str | None = None) -> str:
    """The one line that puts `folder` on PATH in the user's shell for every new terminal.
    Appended, not prepended: the folder may be a venv, whose python must not hide the system's."""
    shell = shell or user_shell()
    if shell == "fish":
        return f"fish_add_path --append {shlex.quote(folder)}"
    if shell in ("powershell", "cmd"):
        ps = (
            "[Environment]::SetEnvironmentVariable('Path', "
            f"[Environment]::GetEnvironmentVariable('Path', 'User') + ';{folder}', 'User')"
        )
        return ps if shell == "powershell" else f'powershell -NoProfile -Command "{ps}"'
    rc = "~/.zshrc" if Path(os.environ.get("SHELL", "")).name == "zsh" else "~/.bashrc"
    line = f'export PATH="$PATH:{folder}"'
    return f"echo {shlex.quote(line)} >> {rc}"


def path_advice(name: str, found: str) -> str | None:
    """One sentence, when `name` is not on the user's PATH: where it is, and the line to fix it."""
    if command_for(name, found) == name:
        return None
    folder = os.path.dirname(found)
    return (
        f"{name} is not on your PATH (it is in {folder}); the commands here use its full path. "
        f"To type just `{name}` in new terminals, run once: {path_line(folder)}"
    )


def venv_python(venv: Path) -> Path:
    """A venv's interpreter (bin/python; Scripts/python.exe on Windows)."""
    return venv / ("Scripts/python.exe" if WINDOWS else "bin/python")


def venv_activation(venv: str = ".venv", shell: str | None = None) -> str:
    """How to activate a venv folder in the user's shell."""
    return {
        "fish": f"source {venv}/bin/activate.fish",
        "powershell": f"{venv}\\Scripts\\Activate.ps1",
        "cmd": f"{venv}\\Scripts\\activate.bat",
    }.get(shell or user_shell(), f"source {venv}/bin/activate")
