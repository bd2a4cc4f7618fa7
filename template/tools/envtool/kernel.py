"""Register the environment as a Jupyter kernel (`ipykernel install --user`, into the user's
Jupyter data folder or $JUPYTER_DATA_DIR), so notebooks in Jupyter or VS Code can pick it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .running import ToolError, capture, display, run


def free_kernel_name(python: Path, slug: str, project: Path) -> str:
    """`slug`, unless a kernel of that name starts another environment's Python: then `slug-2`...
    Ours is re-registered: its Python is in this env's folder (not resolved: a venv's python is a
    link to a base one that other envs share) or inside the project."""
    code = "from jupyter_core.paths import jupyter_data_dir; print(jupyter_data_dir())"
    folder = (capture([python, "-c", code]) or "").strip()
    env_bin = Path(os.path.abspath(python)).parent.resolve()
    for n in range(1, 100):
        name = slug if n == 1 else f"{slug}-{n}"
        try:
            spec = Path(folder, "kernels", name, "kernel.json").read_text(encoding="utf-8")
            start = Path(os.path.abspath(str(json.loads(spec).get("argv", [""])[0])))
        except OSError:
            return name  # free (or no folder known: ipykernel decides)
        except (ValueError, AttributeError, IndexError, TypeError):
            continue  # unreadable: someone's, leave it alone
        if (
            not folder
            or start.parent.resolve() == env_bin
            or start.is_relative_to(project.resolve())
        ):
            return name  # ours (maybe from before a rebuild): refresh it
    raise ToolError(f"kernel names {slug} to {slug}-99 are all taken", fix="remove unused ones")


def register_kernel(python: Path, slug: str, display_name: str) -> str:
    """Install a kernel spec named `slug` that starts `python` (ipykernel writes the running
    interpreter into it); return its folder."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", slug):
        raise ToolError(
            f"'{slug}' cannot name a Jupyter kernel",
            fix="use lowercase letters, digits, '.', '_' and '-' (the project slug always is)",
        )
    cmd = [str(python), "-m", "ipykernel", "install", "--user"]
    cmd += ["--name", slug, "--display-name", display_name]
    retry, what = display(cmd), f"registering the Jupyter kernel '{slug}' failed"
    try:
        out = run(cmd, Path.cwd(), what=what, echo=False)
    except ToolError as exc:
        if "No module named ipykernel" in exc.why:
            exc.what = "ipykernel is not installed in the environment"
            exc.fix = f"add ipykernel to the dev dependencies, run `make env`, then: {retry}"
        else:
            exc.fix = exc.fix or f"after fixing the cause above, run: {retry}"
        raise
    return out.strip().rpartition(" in ")[2]  # "Installed kernelspec <name> in <folder>"


def kernel_step(manager: Any) -> str:
    """The set-up's step: register the kernel "<project name> (<manager>)" for the env."""
    python, slug = manager.env_python(), manager.config.project_slug
    kernel = free_kernel_name(python, slug, manager.project)
    other = "" if kernel == slug else f" [{kernel}]"
    display_name = f"{manager.config.project_name} ({manager.name}){other}"
    folder = register_kernel(python, kernel, display_name)
    note = other and f" (the name {slug} belongs to another environment)"
    return f"Jupyter kernel '{display_name}' registered in {folder}{note}"
