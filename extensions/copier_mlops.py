"""Jinja helpers for copier.yml, loaded by copier-template-extensions (needs `--trust`).

- `check_destination(dst)`: refuse, before anything is written, a non-empty folder that is not a
  copier project (copier would overwrite the user's files or stop half-done).
- `tool_command(name)`: how the user types a tool in a new terminal, found the way the
  environment tool finds it (its full path when their PATH lacks it), and `path_advice(name)`.
- `shell_quote`: a path as one word of the user's shell.
- `project_manager(dst, answer)`: the manager the project really uses (tools/envtool.json; the
  set-up re-renders it when the user accepts its fallback to a plain venv).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from copier.errors import UserMessageError
from jinja2 import Environment
from jinja2.ext import Extension

ANSWERS_FILE = ".copier-answers.yml"


def _tool_base() -> Any:
    """template/tools/envtool/base.py, the environment tool's own lookup (standard library only)."""
    path = Path(__file__).resolve().parents[1] / "template" / "tools" / "envtool" / "shell.py"
    spec = importlib.util.spec_from_file_location("copier_mlops_tool_base", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BASE = _tool_base()


def check_destination(dst: object) -> str:
    """'' when `dst` may be written; otherwise raise copier's own error (a message, no trace).
    (`_copier_operation` is not defined yet while copier asks; update and recopy always run in
    a copier project, which has its answers file.)"""
    folder = Path(str(dst))
    if not folder.is_dir() or (folder / ANSWERS_FILE).is_file():
        return ""  # a new or empty folder, or a copier project (update, recopy)
    # A bare `git init` is fine: the template writes no .git, and the hook commits nothing else.
    theirs = sorted(p.name for p in folder.iterdir() if p.name != ".git")
    if not theirs:
        return ""
    folder = folder.resolve()
    shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
    raise UserMessageError(
        f"{folder} already holds files that are not a copier-mlops project ({shown}).\n"
        "Nothing was written. copier-mlops only generates into a new or empty folder, so none "
        "of your files is overwritten:\n"
        f"  - give a new folder name, e.g. {BASE.shell_quote(str(folder) + '-ml')}, or\n"
        "  - move your files out of this folder first, then run the same command again."
    )


def tool_command(name: str) -> str:
    found = BASE.which(name)
    return BASE.command_for(name, found) if found else name


def path_advice(name: str) -> str:
    found = BASE.which(name)
    return (BASE.path_advice(name, found) or "") if found else ""


def project_manager(dst: object, answer: str) -> str:
    try:
        data = json.loads((Path(str(dst)) / BASE.CONFIG_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return answer
    manager = data.get("env_manager") if isinstance(data, dict) else None
    return manager if isinstance(manager, str) else answer


class CopierMlops(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["check_destination"] = check_destination
        # "3.12": the Python running copier (copier renders in its own process).
        environment.globals["running_python"] = "{}.{}".format(*sys.version_info[:2])
        environment.globals["project_manager"] = project_manager
        environment.filters["tool_command"] = tool_command
        environment.filters["path_advice"] = path_advice
        environment.filters["shell_quote"] = lambda s: BASE.shell_quote(os.fspath(str(s)))
