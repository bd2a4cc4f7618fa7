"""The conda half of conda+Poetry and conda+uv (conda_poetry.py, conda_uv.py build on
CondaHybrid): conda creates the env from environment.yml, the Python tool installs the project
into that same prefix, and conda's records (conda_records.py) say which distributions are
conda's, before and after."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ..conda_records import Owned, base_reason, conda_owned, installer_of, keep_conda, replaced
from ..config import canonical
from ..probe import ProbeReport
from ..report import Report, last_line, lock_readable
from ..running import ToolError, clean_env, query, run, say, stdout_of
from ..shell import WINDOWS
from .conda import INSTALL_CONDA, CondaManager, find_conda_tool


def conda_platform() -> str:
    """conda's name of this platform (its `subdir`), for the explicit lock's file name."""
    machine = platform.machine().lower()
    arch = {"x86_64": "64", "amd64": "64", "arm64": "arm64", "aarch64": "aarch64"}.get(machine)
    system = {"linux": "linux", "darwin": "osx", "win32": "win"}.get(sys.platform, sys.platform)
    if system == "linux" and arch == "arm64":
        arch = "aarch64"
    if system == "osx" and arch == "aarch64":
        arch = "arm64"
    return f"{system}-{arch or machine}"


class CondaHybrid(CondaManager):
    """conda for Python (and CUDA), then `python_tool` installs the Python packages into the same
    env: never a .venv beside it, never into base, never over a package conda installed."""

    dependency_files = "environment.yml (conda's packages) and pyproject.toml (the Python packages)"

    def __init__(self, config: Any) -> None:
        """The Python tool (poetry or uv: tools/envtool.json's lock_tool, which environment.yml
        has conda install into the env) and its lock; install() finds the env's own tool and
        conda's records."""
        super().__init__(config)
        self.python_tool: str = config.lock_tool
        self.python_lock = self.lock_file = f"{self.python_tool}.lock"
        self.py_tool: str | None = None
        self.conda_before: dict[str, Owned] = {}

    def lock_files(self) -> list[str]:
        """The Python tool's lock and every conda-<platform>.lock in the project."""
        return [self.python_lock, *(p.name for p in sorted(self.project.glob("conda-*.lock")))]

    # ---- the conda half
    def conda_lock_name(self) -> str:
        """This platform's conda lock file name: conda-<subdir>.lock (e.g. conda-linux-64.lock)."""
        return f"conda-{conda_platform()}.lock"

    def env_prefix(self) -> Path:
        """The project's conda env folder; ToolError when it is missing or is (a copy of) base."""
        prefix = self.prefix()
        if prefix is None:
            raise ToolError(
                f"the conda environment {self.config.project_slug} does not exist",
                fix=self.fix_env(),
            )
        reason = base_reason(prefix)
        if reason:
            slug = self.config.project_slug
            raise ToolError(
                f"refusing to install into {prefix}: {reason}",
                why="that is conda's base environment (or a copy of it, with conda inside); "
                f"{self.python_tool} installing there can break conda itself",
                fix=f"give the project an environment of its own: `conda deactivate` until no "
                f"environment is active; if {slug} is a copy of base, remove it (conda env "
                f"remove -n {slug}) so that the command below creates a clean one",
            )
        return prefix

    def explicit_command(self) -> list[str]:
        """conda's own `list --explicit --md5` where conda exists (Miniforge has it beside mamba,
        whose `list` learnt --explicit only lately), else micromamba's `env export --explicit`."""
        self.tool = self.tool or find_conda_tool()
        conda = shutil.which("conda") or os.environ.get("CONDA_EXE")
        slug = self.config.project_slug
        if conda:
            return [conda, "list", "-n", slug, "--explicit", "--md5"]
        if self.flavour == "micromamba":
            return [str(self.tool), "env", "export", "-n", slug, "--explicit", "--md5"]
        return [str(self.tool), "list", "-n", slug, "--explicit", "--md5"]

    def write_conda_lock(self) -> str:
        """The explicit, per-platform lock of conda's packages, written by conda itself: exact
        URLs and md5 sums, installable with `conda create -n NAME --file <it>` by conda, mamba and
        micromamba alike, with no extra tool (conda-lock is not part of Miniforge)."""
        self.tool = self.tool or find_conda_tool()
        if self.tool is None:
            raise ToolError("none of mamba, micromamba or conda is installed", fix=INSTALL_CONDA)
        out = stdout_of(self.explicit_command(), self.project)
        if "@EXPLICIT" not in out:
            raise ToolError(f"{self.flavour} printed no explicit package list", why=out[-2000:])
        found = re.search(r"^# platform: (\S+)", out, re.MULTILINE)
        name = f"conda-{found.group(1)}.lock" if found else self.conda_lock_name()
        (self.project / name).write_text(out.strip() + "\n", encoding="utf-8")
        return name

    # ---- the Python half
    def bin_dirs(self, prefix: Path) -> list[Path]:
        """Where a conda env keeps programs (as `conda activate` puts them on PATH)."""
        if WINDOWS:
            return [prefix, prefix / "Library" / "bin", prefix / "Scripts"]
        return [prefix / "bin"]

    def tool_in_env(self, prefix: Path) -> str:
        """The env's own Poetry/uv, which environment.yml has conda install."""
        name = f"{self.python_tool}.exe" if WINDOWS else self.python_tool
        found = [d / name for d in self.bin_dirs(prefix) if (d / name).exists()]
        if not found:
            slug = self.config.project_slug
            raise ToolError(
                f"{self.python_tool} is not installed in the conda environment {slug}",
                why=f"looked in {', '.join(map(str, self.bin_dirs(prefix)))}; environment.yml "
                "lists it, so conda installs it there",
                fix=f"put `- {self.python_tool}` back under dependencies in environment.yml, or "
                f"install it now: conda install -n {slug} -c conda-forge {self.python_tool}",
            )
        return str(found[0])

    def keep(self, prefix: Path) -> tuple[list[str], dict[str, str]]:
        """The Python tool's arguments and variables that leave conda's packages alone."""
        return keep_conda(self.python_tool, prefix, self.conda_before)

    def python_env(self, prefix: Path) -> dict[str, str]:
        """What `conda activate` sets for the tool (the env first on PATH, CONDA_PREFIX), and
        keep()'s variables: it installs into the env, never a virtualenv of its own."""
        path = os.pathsep.join([*map(str, self.bin_dirs(prefix)), os.environ.get("PATH", "")])
        activated = {"PATH": path, "CONDA_PREFIX": str(prefix)}
        return clean_env(
            {**activated, "CONDA_DEFAULT_ENV": self.config.project_slug, **self.keep(prefix)[1]}
        )

    def requested_conda_packages(self) -> list[str]:
        """Packages the Python side asks for that conda provides (pyproject.toml, read by the
        TOML parser of Python 3.11+; on 3.10 the set-up's after-check still catches it)."""
        try:
            import tomllib
        except ImportError:
            return []
        try:
            data = tomllib.loads((self.project / "pyproject.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        groups = data.get("dependency-groups", {})
        requests = list(data.get("project", {}).get("dependencies", []))
        requests += [r for group in groups.values() for r in group if isinstance(r, str)]
        poetry = data.get("tool", {}).get("poetry", {})
        requests += list(poetry.get("dependencies", {}))
        for group in poetry.get("group", {}).values():
            requests += list(group.get("dependencies", {}))
        names = {canonical(re.split(r"[\s\[<>=!~;@(]", r.strip(), maxsplit=1)[0]) for r in requests}
        provided = {canonical(n) for n in self.config.conda_provides} - {"python"}
        return sorted(names & provided)

    def find_tool(self) -> str:
        """Find conda's tool, then refuse a pyproject.toml that asks for packages conda provides."""
        note = super().find_tool()
        both = self.requested_conda_packages()
        if both:
            raise ToolError(
                f"pyproject.toml asks {self.python_tool} for {', '.join(both)}, which conda "
                "provides in this project (environment.yml)",
                why=f"{self.python_tool} would install a second copy from the package index over "
                "conda's; a package belongs to one side only",
                fix=f"remove {', '.join(both)} from pyproject.toml's dependencies (conda installs "
                "it), then run the command below",
            )
        return note

    def install_python_side(self, prefix: Path) -> str:
        """Install the project with the env's own Poetry/uv into `prefix`; the note for the log."""
        raise NotImplementedError

    def install(self) -> str:
        """Poetry/uv install into the conda env; ToolError if they replaced conda's packages."""
        prefix = self.env_prefix()
        if os.environ.get("CONDA_DEFAULT_ENV") == "base":
            say(f"    note: base is active in this shell; the set-up installs into {prefix}, "
                f"not base (activate it: conda activate {self.config.project_slug})")  # fmt: skip
        self.py_tool = self.tool_in_env(prefix)
        self.conda_before = conda_owned(prefix)
        note = self.install_python_side(prefix)
        problems = replaced(prefix, self.conda_before)
        if problems:
            raise ToolError(
                f"{self.python_tool} replaced packages conda installed: {'; '.join(problems)}",
                why="a PyPI copy over a conda package breaks conda's record of the environment "
                "(and, for compiled packages, their shared libraries)",
                fix=f"restore conda's copies: {self.config.commands.get('env', 'make env')} after "
                f"`conda install -n {self.config.project_slug} --force-reinstall "
                f"{' '.join(p.split()[0] for p in problems)}`",
            )
        if (self.project / ".venv").exists():
            say(f"    note: {self.project / '.venv'} exists but is not used (the env is {prefix})")
        return f"{note}; conda's {len(self.conda_before)} Python packages untouched"

    def lock(self, refresh: bool = False) -> str:
        """Both locks, one writer each: conda writes conda-<platform>.lock from the env it
        solved, Poetry/uv write their own; refresh re-solves environment.yml first."""
        if refresh:
            self.create()
        prefix = self.env_prefix()
        self.py_tool = self.py_tool or self.tool_in_env(prefix)
        conda_lock = self.write_conda_lock()
        lock = self.project / self.python_lock
        if refresh or not lock.exists():
            run([self.py_tool, *self.lock_args], self.project, env=self.python_env(prefix))
            return f"wrote {conda_lock}; {self.python_tool} wrote {self.python_lock}"
        return f"wrote {conda_lock}; {self.python_lock} written by the install"

    def fix_lock(self) -> str:
        """The doctor's fix for stale locks: the project's lock command, then its env command."""
        return f"{self.config.commands['lock']}, then {self.config.commands['env']}   (or: make lock env)"

    def fix_import(self, distribution: str, version: str) -> str:
        """A failed import's fix: conda reinstalls its own packages, the env command the others."""
        if canonical(distribution) in conda_owned_names(self):
            return super().fix_import(distribution, version)
        return f"{self.config.commands['env']}   (or: make env)"

    # ---- the doctor: both halves
    def python_side_check(self, report: Report, tool: str, prefix: Path) -> None:
        """The doctor's checks of the Python tool's half, given the env's own tool."""
        raise NotImplementedError

    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """The doctor's checks of both halves: conda's env and lock, then the Python tool's lock."""
        slug = self.config.project_slug
        report.section(f"conda half (the environment {slug})")
        try:
            prefix = self.env_prefix()
        except ToolError as exc:
            report.problem(exc.what, exc.fix or self.fix_env())
            return
        report.ok(f"the environment {slug} is the project's ({prefix}), not base")
        conda = shutil.which("conda") or os.environ.get("CONDA_EXE")
        if conda and query([conda, "doctor", "--help"])[0] == 0:
            code, out, err = query([conda, "doctor", "-n", slug], self.project)
            if code:
                report.problem(f"conda doctor: {last_line(out + err)}", self.fix_env())
            else:
                report.ok("conda doctor found no problem")
        else:
            report.info("`conda doctor` is not available here (it needs conda 23.5 or newer)")
        lock = self.project / self.conda_lock_name()
        if not lock.is_file():
            report.problem(
                f"{lock.name} (conda's lock for this platform) is missing", self.fix_lock()
            )
        else:
            self.tool = self.tool or find_conda_tool()
            code, out, _ = query(self.explicit_command())
            want = {line for line in lock.read_text(encoding="utf-8").splitlines() if "://" in line}
            have = {line for line in out.splitlines() if "://" in line}
            if code or want != have:
                report.problem(
                    f"the environment's conda packages differ from {lock.name} "
                    f"({len(want - have)} locked not installed, {len(have - want)} installed not locked)",
                    f"back to the lock: conda create -n {slug} --file {lock.name} --yes, then "
                    f"{self.config.commands['env']}; or record the env as it is: {self.config.commands['lock']}",
                )
            else:
                report.ok(f"conda's packages match {lock.name}")
        owned = conda_owned(prefix)
        foreign = [
            f"{o.name} {o.version}"
            for o in owned.values()
            if installer_of(prefix / o.folder) not in ("conda", "unknown")
        ]
        if foreign:
            report.problem(
                f"conda's records list packages another installer rewrote: {', '.join(foreign)}",
                f"conda install -n {slug} --force-reinstall {' '.join(f.split()[0] for f in foreign)}",
            )
        else:
            report.ok(f"{len(owned)} conda-installed Python packages, none replaced by a PyPI copy")
        report.section(f"{self.python_tool} half ({self.python_lock})")
        try:
            tool = self.py_tool or self.tool_in_env(prefix)
        except ToolError as exc:
            report.problem(exc.what, exc.fix)
            return
        if lock_readable(report, self.project / self.python_lock, self.fix_lock()):
            self.python_side_check(report, tool, prefix)


def conda_owned_names(manager: CondaHybrid) -> set[str]:
    """The distributions conda installed in the manager's env (none when it does not exist)."""
    prefix = manager.prefix()
    return set(conda_owned(prefix)) if prefix else set()
