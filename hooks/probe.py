"""Sanity import, run by the NEW environment's Python: `python -I probe.py '<json>'`.

Imports the project's package (and proves the module found is the project's own source, given
as "source") and every runtime dependency the installed project declares
(its metadata, so edits to pyproject.toml count), each by its import name, and prints one JSON
report on stdout. Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 name: scikit_learn, Scikit.Learn -> scikit-learn."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str | None:
    """Distribution name of a PEP 508 requirement string."""
    m = NAME.match(req)
    return m.group(1) if m else None


def applies(req: str) -> bool:
    """Whether a Requires-Dist line applies here: not an extra, markers true (when evaluable)."""
    if ";" not in req:
        return True
    marker = req.split(";", 1)[1].strip()
    if re.search(r"\bextra\s*==", marker):
        return False
    try:
        from packaging.markers import Marker  # present in most envs, but not required
    except ImportError:
        return True
    try:
        return bool(Marker(marker).evaluate())
    except Exception:
        return True


def import_name(dist: str, hints: dict[str, str], top_levels: dict[str, list[str]]) -> str:
    """The module to import for distribution `dist`.

    Order: the template's explicit mapping (scikit-learn -> sklearn), then the top-level
    modules the installed distribution provides, then the name with dashes as underscores.
    """
    key = normalize(dist)
    if key in hints:
        return hints[key]
    guess = key.replace("-", "_")
    provided = [m for m in top_levels.get(key, []) if not m.startswith("_")]
    if guess in provided or not provided:
        return guess
    return sorted(provided, key=lambda m: (normalize(m) != key, len(m), m))[0]


def top_level_modules() -> dict[str, list[str]]:
    """Normalised distribution name -> its importable top-level modules."""
    result: dict[str, list[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            result.setdefault(normalize(dist), []).append(module)
    return result


def version_of(dist: str | None, module: Any) -> str:
    if dist:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", "?"))


def try_import(module: str, dist: str | None) -> dict[str, str]:
    row = {"module": module, "distribution": dist or "", "version": "", "error": ""}
    try:
        mod = importlib.import_module(module)
    except BaseException as exc:  # an import can raise anything, even SystemExit
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return row
    row["version"] = version_of(dist, mod)
    return row


def module_files(module: Any) -> list[str]:
    """Where a module was loaded from: its file, or a namespace package's folders."""
    file = getattr(module, "__file__", None)
    return [file] if file else [str(p) for p in getattr(module, "__path__", [])]


def own_package(package: str, distribution: str, source: str) -> dict[str, str]:
    """Import the project's package and prove it is the project's own: a module of the same name
    elsewhere (a dependency such as joblib, the running script for __main__, a stray folder on
    sys.path) would import fine and say nothing about the project."""
    row = try_import(package, distribution)
    if row["error"] or not source:
        return row
    expected = Path(source).resolve()
    found = module_files(sys.modules.get(package))
    if not found or not all(Path(f).resolve().is_relative_to(expected) for f in found):
        where = ", ".join(found) or "nowhere (no file)"
        row["error"] = (
            f"`import {package}` found {where}, not the project's {expected}: another module of "
            f"that name shadows the project's package; rename the package (package_name) to a "
            f"name no installed module has, e.g. {package.strip('_') or 'my'}_project"
        )
    return row


def probe(
    package: str, distribution: str, hints: dict[str, str], source: str = ""
) -> dict[str, Any]:
    report: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable}
    rows = [own_package(package, distribution, source)]
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        report["error"] = f"the project ({distribution}) is not installed in this environment"
        requires = []
    top = top_level_modules()
    seen = {package}
    for req in requires:
        name = requirement_name(req)
        if not name or not applies(req):
            continue
        module = import_name(name, hints, top)
        if module not in seen:
            seen.add(module)
            rows.append(try_import(module, name))
    report["rows"] = rows
    return report


MARKER = "ENVSETUP-REPORT "


def main(argv: list[str]) -> int:
    args = json.loads(argv[1])
    report = probe(
        args["package"], args["distribution"], args.get("hints", {}), args.get("source", "")
    )
    # A marker, because an imported module may print to stdout too.
    print(MARKER + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
