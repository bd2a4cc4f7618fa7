"""What venv and Poetry projects declare outside [project] (requirements files, Poetry's dev
group) and what their locks pin (pip freeze, poetry.lock): declared and lock_pins run in the
environment (the probe loads this file); compare_with_lock, in the doctor, checks the versions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# pip freeze leaves these out of requirements.lock: they are not drift.
UNLOCKED = {"pip", "setuptools", "wheel", "distribute"}


def declared(
    project: Path, pyproject: dict[str, Any], requirement_files: list[str]
) -> list[tuple[str, str]]:
    """(group, requirement) from Poetry's dev group and the given requirements files."""
    group = pyproject.get("tool", {}).get("poetry", {}).get("group", {}).get("dev", {})
    found = [
        ("dev", name + (spec if isinstance(spec, str) and spec[:1] in "<>=!~" else ""))
        for name, spec in group.get("dependencies", {}).items()
    ]
    for name in requirement_files:
        for line in (project / name).read_text(encoding="utf-8").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith(("#", "-")):
                found.append(("dev" if "dev" in name else "runtime", line))
    return found


def lock_pins(path: Path, parse: Any, canonical: Any, tomllib: Any) -> dict[str, list[str]]:
    """Package -> the versions a poetry.lock (entries whose markers apply) or a pip freeze pins
    (with the probe's requirement parser, name normaliser and TOML reader)."""
    pins: dict[str, list[str]] = {}
    if path.name == "poetry.lock" and tomllib is not None:
        for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("package", []):
            versions = pins.setdefault(canonical(entry["name"]), [])
            markers = entry.get("markers")
            if not isinstance(markers, str) or parse(f"x; {markers}") is not None:
                versions.append(str(entry.get("version", "")))
        return pins
    for line in path.read_text(encoding="utf-8").splitlines():
        req = parse(line) if line.strip() and not line.lstrip().startswith(("#", "-")) else None
        pinned = [s.version for s in req.specifier if s.operator in ("==", "===")] if req else []
        if req and pinned:
            pins.setdefault(canonical(req.name), []).extend(pinned)
    return pins


def compare_with_lock(
    report: Any, found: Mapping[str, Any], own: str, *, exact: bool, fix: str
) -> None:
    """Installed versions (the probe's) vs the lock's pins. A cross-platform lock (poetry) also
    pins packages this platform never installs: absent ones count only for an exact lock."""
    pins: dict[str, list[str]] = found.get("lock", {})
    have: dict[str, str] = found.get("distributions", {})
    differ = [
        f"{name} {have[name]} installed, {' or '.join(sorted(versions))} locked"
        for name, versions in sorted(pins.items())
        if name in have and name != own and versions and have[name] not in versions
    ]
    if exact:
        differ += [f"{name} locked but not installed" for name in sorted(pins) if name not in have]
        differ += [
            f"{name} {version} installed but not locked"
            for name, version in sorted(have.items())
            if name not in pins and name != own and name not in UNLOCKED
        ]
    if differ:
        report.problem(f"the environment differs from the lock file: {'; '.join(differ)}", fix)
    else:
        report.ok("installed versions match the lock file")
