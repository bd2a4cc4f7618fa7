"""Development helpers that tests/ and bench/ share (neither imports the other): copier.yml's
managers, the package index pip uses, and the set-up's JSON result. The buildah driver that
builds the generated Dockerfiles is imagebuild.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "template" / "tools"))  # the environment tool, as `envtool`
from envtool.base import RESULT_FILE  # noqa: E402


def copier_config() -> dict[str, Any]:
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
