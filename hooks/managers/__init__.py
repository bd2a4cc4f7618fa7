"""One module per environment manager, all behind `hooks.base.Manager`."""

from __future__ import annotations

from ..base import Config, HookError, Manager
from .conda import CondaManager
from .poetry import PoetryManager
from .uv import UvManager
from .venv import VenvManager

MANAGERS: dict[str, type[Manager]] = {
    "venv": VenvManager,
    "uv": UvManager,
    "poetry": PoetryManager,
    "conda": CondaManager,
}


def manager_for(config: Config) -> Manager:
    try:
        return MANAGERS[config.env_manager](config)
    except KeyError:
        raise HookError(
            f"unknown env_manager {config.env_manager!r}",
            fix=f"set env_manager in tools/envsetup.json to one of: {', '.join(MANAGERS)}",
        ) from None


__all__ = ["MANAGERS", "CondaManager", "PoetryManager", "UvManager", "VenvManager", "manager_for"]
