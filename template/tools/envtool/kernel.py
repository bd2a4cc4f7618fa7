"""Register the new environment as a Jupyter kernel, so notebooks (Jupyter, VS Code) can pick it.

`ipykernel install --user` writes the kernel spec into the user's Jupyter data folder, which
honours $JUPYTER_DATA_DIR; the spec's argv starts with the environment's own Python.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .base import Config, HookError, display, run


def kernel_command(python: Path, slug: str, display_name: str) -> list[str]:
    return [
        str(python),
        "-m",
        "ipykernel",
        "install",
        "--user",
        "--name",
        slug,
        "--display-name",
        display_name,
    ]


def _same_interpreter(a: str, b: Path) -> bool:
    """Same path, folders' symlinks resolved but not the file's: a venv's python is a symlink to
    the base interpreter, and a spec pointing at the base one would miss the env's packages."""
    pa, pb = Path(os.path.abspath(a)), Path(os.path.abspath(b))
    return pa.name == pb.name and pa.parent.resolve() == pb.parent.resolve()


def register_kernel(python: Path, slug: str, display_name: str) -> Path:
    """Install a kernel spec named `slug` that starts `python`; return the path of its kernel.json.

    Raises HookError (what failed, why, how to fix it) when ipykernel is missing or the spec
    written does not start `python`.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", slug):
        raise HookError(
            f"'{slug}' cannot name a Jupyter kernel",
            fix="use lowercase letters, digits, '.', '_' and '-' (the project slug always is)",
        )
    cmd = kernel_command(python, slug, display_name)
    retry = display(cmd)
    try:
        out = run(
            cmd, Path.cwd(), what=f"registering the Jupyter kernel '{slug}' failed", echo=False
        )
    except HookError as exc:
        if "No module named ipykernel" in exc.why:
            exc.what = "ipykernel is not installed in the environment"
            exc.fix = f"add ipykernel to the dev dependencies, run `make env`, then: {retry}"
        else:
            exc.fix = exc.fix or f"after fixing the cause above, run: {retry}"
        raise
    # ipykernel prints "Installed kernelspec <name> in <folder>".
    found = re.search(r"Installed kernelspec \S+ in (.+)$", out.strip(), re.MULTILINE)
    if not found:
        raise HookError("ipykernel did not say where it put the kernel spec", why=out, fix=retry)
    spec = Path(found[1].strip()) / "kernel.json"
    try:
        argv = json.loads(spec.read_text(encoding="utf-8"))["argv"]
    except (OSError, ValueError, KeyError) as exc:
        raise HookError(f"the kernel spec {spec} is unreadable", why=str(exc), fix=retry) from exc
    if not argv or not _same_interpreter(argv[0], python):
        raise HookError(
            f"the kernel spec {spec} starts {argv[0] if argv else 'nothing'}, not {python}",
            fix=f"run it with the environment's Python: {retry}",
        )
    return spec


def kernel_step(config: Config, python: Path, manager: str) -> str:
    """The set-up's step: register the kernel "<project name> (<manager>)" for `python`."""
    name = config.project_name
    spec = register_kernel(python, config.project_slug, f"{name} ({manager})")
    return f"Jupyter kernel '{name} ({manager})' registered in {spec.parent}"
