"""One module per environment manager, named after its `env_manager` choice in copier.yml (the
one list of managers); each defines MANAGER, its `base.Manager` subclass. Adding a manager is
adding a choice there and a module here."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..base import CONFIG_FILE, Config, HookError, Manager


def manager_class(name: str) -> type[Manager]:
    module = name.replace("-", "_")
    if not (Path(__file__).parent / f"{module}.py").is_file():
        known = sorted(p.stem for p in Path(__file__).parent.glob("[a-z]*.py"))
        raise HookError(
            f"unknown env_manager {name!r}",
            fix=f"set env_manager in {CONFIG_FILE.as_posix()} to one of: {', '.join(known)}",
        )
    manager: type[Manager] = importlib.import_module(f".{module}", __name__).MANAGER
    return manager


def manager_for(config: Config) -> Manager:
    return manager_class(config.env_manager)(config)


__all__ = ["manager_class", "manager_for"]
