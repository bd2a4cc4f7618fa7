"""Venv ownership: the tool reuses or replaces only a .venv that is provably this project's."""

from __future__ import annotations

import json
import re
from pathlib import Path


def venv_belongs_to(venv: Path, project: Path, slug: str) -> bool:
    """Whether `venv` is provably `project`'s: its prompt is the slug (ours; Poetry's is
    "<slug>-py3.X": copier writes only into empty folders and its own projects, so no foreign
    .venv comes with the copy), or it holds an editable install of the project."""
    try:
        cfg = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not a virtual environment at all
    prompt = re.search(r"^prompt\s*=\s*(.*?)\s*$", cfg, re.MULTILINE)
    if prompt and re.fullmatch(rf"{re.escape(slug)}(-py\d+\.\d+)?", prompt[1].strip("'\"")):
        return True
    for direct_url in venv.glob("*/*/site-packages/*.dist-info/direct_url.json"):
        try:
            url = json.loads(direct_url.read_text(encoding="utf-8")).get("url", "")
        except (OSError, ValueError, AttributeError):
            continue
        if url.rstrip("/") == project.resolve().as_uri():
            return True
    return False
