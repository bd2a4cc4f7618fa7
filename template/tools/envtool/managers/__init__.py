"""One module per environment manager, named after its `env_manager` choice in copier.yml (the
one list of managers); each defines MANAGER, its `base.Manager` subclass. Adding a manager is
adding a choice there and a module here."""

from __future__ import annotations

import importlib

from ..base import Config, Manager, ToolError, manager_names


def manager_class(name: str) -> type[Manager]:
    if name not in manager_names():
        raise ToolError(
            f"unknown env_manager {name!r}", fix=f"use one of: {', '.join(manager_names())}"
        )
    manager: type[Manager] = importlib.import_module(f".{name.replace('-', '_')}", __name__).MANAGER
    return manager


def manager_for(config: Config) -> Manager:
    return manager_class(config.env_manager)(config)
