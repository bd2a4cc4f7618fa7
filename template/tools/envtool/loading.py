"""Loading managers: managers/<env_manager>.py, by the name tools/envtool.json gives."""

from __future__ import annotations

import importlib
from typing import cast

from .config import Config
from .manager import Manager
from .running import ToolError


def manager_class(name: str) -> type[Manager]:
    """The manager `name` (one of manager_names(): Config.load checks it); a module that fails
    to load is reported with its own error, not as a problem of the config."""
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(f"{__package__}.managers.{module_name}")
    except Exception as exc:  # a syntax error, a missing module it imports, an error it raises
        raise ToolError(
            f"the {name} manager (tools/envtool/managers/{module_name}.py) could not be loaded: "
            f"{type(exc).__name__}: {exc}",
            fix="restore the tool's files: `git status tools/envtool` shows what changed, "
            "`git checkout -- tools/envtool` restores them",
        ) from exc
    return cast("type[Manager]", module.MANAGER)


def manager_for(config: Config) -> Manager:
    """The manager object for a project's config."""
    return manager_class(config.env_manager)(config)
