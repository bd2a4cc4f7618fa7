"""conda: mamba, micromamba or conda (first found), a named env from environment.yml."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ..manager import Manager
from ..probe import ProbeReport
from ..report import Report, last_line
from ..running import ToolError, capture, query, run, stdout_of
from ..shell import WINDOWS

INSTALL_CONDA = (
    "install Miniforge (https://conda-forge.org/download/, gives `conda` and `mamba`) "
    "or micromamba (https://mamba.readthedocs.io/en/latest/installation/micromamba-installation.html)"
)
TOOLS = ("mamba", "micromamba", "conda")


def find_conda_tool() -> str | None:
    """mamba, then micromamba, then conda: on PATH, or where an activated shell says it is."""
    for name in TOOLS:
        found = shutil.which(name)
        if found:
            return found
    # `conda` is a shell function after `conda init`; CONDA_EXE/MAMBA_EXE name the real program.
    for var in ("MAMBA_EXE", "CONDA_EXE"):
        exe = os.environ.get(var)
        if exe and Path(exe).is_file():
            return exe
    return None


class CondaManager(Manager):
    """Plain conda: environment.yml makes the env, its pip section installs the project."""

    name = "conda"
    alternatives = ("venv",)
    lock_file = "environment.lock.yml"
    dependency_files = "environment.yml and pyproject.toml"
    index_setting = "environment.yml's pip section (`--index-url <URL>`), or PIP_INDEX_URL (pip)"

    @property
    def flavour(self) -> str:
        """mamba, micromamba or conda (they differ in prompting)."""
        stem = Path(self.tool or "conda").name.lower()
        return next((t for t in TOOLS if stem.startswith(t)), "conda")

    @property
    def yes(self) -> list[str]:
        """["--yes"] for mamba and micromamba, which ask before they change an env; [] for conda."""
        # mamba 2 and micromamba ask for confirmation; `conda env create` never does.
        return ["--yes"] if self.flavour in ("mamba", "micromamba") else []

    def find_tool(self) -> str:
        """Find mamba, micromamba or conda (the first found); the note is its version and path."""
        self.tool = find_conda_tool()
        if not self.tool:
            raise ToolError(
                "none of mamba, micromamba or conda is installed (not found on PATH)",
                fix=INSTALL_CONDA,
            )
        lines = (capture([self.tool, "--version"]) or "").strip().splitlines()
        version = lines[0].strip() if lines else ""
        if not version.startswith(self.flavour):  # micromamba prints only the number
            version = f"{self.flavour} {version}".strip()
        return f"{version} at {self.tool}"

    def find_interpreter(self) -> str:
        """No Python to find: conda installs python_version (environment.yml); the note says so."""
        version = self.config.python_version
        return f"conda installs Python {version} itself (environment.yml: python={version})"

    def prefix(self) -> Path | None:
        """Where the named env lives, from `env list --json` (None when it does not exist)."""
        self.tool = self.tool or find_conda_tool()
        if self.tool is None:
            raise ToolError("none of mamba, micromamba or conda is installed", fix=INSTALL_CONDA)
        out = capture([self.tool, "env", "list", "--json"])
        try:
            envs = json.loads(out or "{}").get("envs", [])
        except ValueError:
            envs = []
        for env in envs:
            if Path(env).name == self.config.project_slug:
                return Path(env)
        return None

    def env_python(self) -> Path:
        """The Python in the named conda env's folder; ToolError when the env does not exist."""
        prefix = self.prefix()
        if prefix is None:
            raise ToolError(f"the conda environment {self.config.project_slug} does not exist")
        return prefix / ("python.exe" if WINDOWS else "bin/python")

    def create(self) -> str:
        """Create the env named after the slug from environment.yml (`env create`), or update
        the existing one (`env update --prune`); the note says which."""
        assert self.tool is not None
        name = self.config.project_slug
        fix = "check the packages in environment.yml (conda-forge names; others go under `pip:`)"
        update = self.prefix() is not None
        prune = ["--prune"] if update else []
        action = "update" if update else "create"
        run([self.tool, "env", action, "-n", name, "-f", "environment.yml", *prune, *self.yes],
            self.project, fix=fix)  # fmt: skip
        return f"{'updated the existing' if update else 'created the'} environment {name}"

    def install(self) -> str:
        """Nothing to run: environment.yml's pip section installed the project in create()."""
        return "done by the step before: environment.yml's pip section installs the project (-e .)"

    def lock(self, refresh: bool = False) -> str:
        """Write environment.lock.yml: the named env's `env export` under a one-line header
        (refresh or not, the lock is the env as it is)."""
        self.tool = self.tool or find_conda_tool()
        assert self.tool is not None
        out = stdout_of([self.tool, "env", "export", "-n", self.config.project_slug], self.project)
        header = (
            f"# Exact packages of the env {self.config.project_slug} ({self.flavour} env export)\n"
        )
        (self.project / "environment.lock.yml").write_text(
            header + out.strip() + "\n", encoding="utf-8"
        )
        return "wrote environment.lock.yml"

    def location(self) -> str:
        """The env's name, with its folder when the env exists."""
        prefix = self.prefix()
        return f"{self.config.project_slug} ({prefix})" if prefix else self.config.project_slug

    def activation(self) -> str:
        """`<mamba|micromamba|conda> activate <slug>`, by the tool the set-up found."""
        return f"{self.flavour} activate {self.config.project_slug}"

    def fix_import(self, distribution: str, version: str) -> str:
        """The doctor's fix for a package that does not import: conda reinstalls it in the env."""
        slug = self.config.project_slug
        return f"conda install -n {slug} --force-reinstall {distribution}   (or: make env)"

    def fix_lock(self) -> str:
        """The doctor's fix for a stale environment.lock.yml: rebuild the env (the set-up
        writes the lock from it)."""
        return self.fix_env()  # the set-up writes the lock from the environment it made

    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """environment.yml against the environment, by conda's own parser and matcher
        (`conda compare`; mamba and micromamba have no such command)."""
        report.section("Conda environment vs environment.yml (conda compare)")
        conda = shutil.which("conda") or os.environ.get("CONDA_EXE")
        if not conda:
            report.problem(
                "conda is not on PATH: cannot compare the environment with environment.yml",
                "install Miniforge (https://conda-forge.org/download/), or use a shell where "
                "`conda` works",
            )
            return
        slug = self.config.project_slug
        code, out, err = query(
            [conda, "compare", "--json", "-n", slug, "environment.yml"], self.project
        )
        try:
            found = json.loads(out)
        except ValueError:
            found = None
        messages: list[str] = [str(m) for m in found] if isinstance(found, list) else []
        drift = [m for m in messages if not m.startswith("Success")]
        for message in drift:
            report.problem(f"{message} (environment.yml vs the environment {slug})", self.fix_env())
        if code == 0 and messages and not drift:
            report.ok("every package of environment.yml is in the environment (conda compare)")
        elif not drift:  # every outcome is a verdict: an exit status or output it cannot read
            what = f"exit status {code}" if code else "no verdict"
            report.problem(
                f"`conda compare` failed ({what}): {last_line(err or out)}", self.fix_env()
            )


MANAGER = CondaManager

if __name__ == "__main__" and sys.argv[1:2] == ["guard"]:  # the hybrids' image build
    from ..conda_records import guard

    sys.exit(guard(sys.argv[2:]))
