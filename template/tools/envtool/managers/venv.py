"""venv + pip: `python3.X -m venv .venv`, pip install, `requirements.lock` from pip freeze."""

from __future__ import annotations

import shlex

from ..discovery import require_python
from ..failures import hide_credentials
from ..manager import Manager
from ..pins import compare_with_lock
from ..probe import ProbeReport
from ..report import Report
from ..running import ToolError, capture, display, python_version_of, query, run, say, stdout_of

# A new venv gets the pip its Python bundled (Debian 12's Python 3.11: pip 23.0.1), and newer pips
# resolve much faster: the default project's 126 packages took 57 s with pip 23.0.1 and 29 s with
# 26.3 (measured: warm cache, no pip configuration). So an older pip is upgraded first.
PIP_FLOOR = 25  # major version
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]


class VenvManager(Manager):
    """The standard library's venv and pip; requirements.lock from pip freeze."""

    name = "venv"
    lock_file = "requirements.lock"
    dependency_files = "requirements.txt and pyproject.toml"
    requirement_files = ("requirements.txt", "requirements-dev.txt")
    pins_lock = True
    index_setting = (
        "requirements.txt's first line `--index-url <URL>` (copier's package_index_url answer "
        "writes it), or PIP_INDEX_URL / `pip config set global.index-url <URL>` (pip)"
    )

    def find_tool(self) -> str:
        """Nothing to find: venv and pip come with Python."""
        return "Python's own venv and pip (no extra tool needed)"

    def find_interpreter(self) -> str:
        """Find a Python of python_version whose venv and ensurepip modules import (Debian and
        Ubuntu split them into python3.X-venv)."""
        want = self.config.python_version
        python, version = require_python(want)
        self.interpreter = python
        if capture([python, "-c", "import venv, ensurepip"]) is None:
            raise ToolError(
                f"Python {version} at {python} cannot create virtual environments",
                why="its `venv`/`ensurepip` modules are missing",
                fix=f"install them (Debian/Ubuntu: `apt install python{want}-venv`)",
            )
        return f"Python {version} at {python}"

    def create(self) -> str:
        """Reuse .venv when its Python is python_version, else recreate it (--clear), or create
        it (after claim_venv); the note says which."""
        assert self.interpreter is not None
        self.claim_venv()
        have = python_version_of(self.env_python()) or "" if self.env_python().exists() else None
        if have is not None and have.startswith(self.config.python_version + "."):
            return f"reusing .venv (Python {have})"
        clear = [] if have is None else ["--clear"]
        run(
            [self.interpreter, "-m", "venv", *clear, "--prompt", self.config.project_slug, ".venv"],
            self.project,
        )
        return (
            "created .venv"
            if have is None
            else f"recreated .venv (it had Python {have or 'that does not run'})"
        )

    def install(self) -> str:
        """pip install -r requirements-dev.txt into .venv: the project (editable), its runtime and
        dev dependencies. --no-compile: pip would byte-compile every file of every package, about
        half of the install's time; the sanity import compiles what is used."""
        upgraded = self.upgrade_pip()
        run([self.env_python(), *PIP, "-r", "requirements-dev.txt"], self.project)
        return "installed the project (editable) with its runtime and dev dependencies" + upgraded

    def pip_version(self) -> int:
        """The major version of .venv's pip (0 when it does not run)."""
        out = capture([self.env_python(), "-c", "import pip; print(pip.__version__)"], self.project)
        self.pip = (out or "").strip()
        return int(self.pip.split(".")[0]) if self.pip else 0

    def upgrade_pip(self) -> str:
        """Upgrade .venv's pip below PIP_FLOOR, from requirements.txt's index; where that fails
        (offline, an index without pip) go on with the bundled pip. The note's end."""
        if not 0 < self.pip_version() < PIP_FLOOR:  # no pip: the install step says so
            return ""
        have = self.pip
        requirements = self.project / "requirements.txt"
        lines = requirements.read_text("utf-8").splitlines() if requirements.is_file() else []
        index = next((shlex.split(x) for x in lines if x.startswith(("--index-url", "-i "))), [])
        cmd = [
            str(self.env_python()),
            *PIP,
            "--upgrade",
            "--retries",
            "0",
            "--timeout",
            "15",
            *index,
            "pip",
        ]
        say(f"  $ {hide_credentials(display(cmd))}")  # a hand-edited --index-url may carry some
        status, out, err = query(cmd, self.project, timeout=120)
        # pip exits 0 when it cannot reach the index but has a pip: ask the version again.
        if self.pip_version() >= PIP_FLOOR:
            return f" (pip {have} upgraded to {self.pip} first)"
        failed = ((err or out).strip().splitlines() or [""])[-1].strip()
        reason = f"its upgrade failed: {failed}" if status else "no newer pip on the index"
        say(f"    kept pip {have} ({reason}); the install goes on with it")
        return ""

    def lock(self, refresh: bool = False) -> str:
        """Write requirements.lock: .venv's `pip freeze` (the editable project left out) under a
        header (refresh or not, the lock is the env as it is)."""
        freeze = ["-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"]
        out = stdout_of([self.env_python(), *freeze], self.project)
        header = (
            "# Exact versions that worked (pip freeze). Install: pip install -r requirements.lock\n"
        )
        (self.project / "requirements.lock").write_text(
            header + out.strip() + "\n", encoding="utf-8"
        )
        return f"wrote requirements.lock ({len(out.split())} packages)"

    def fix_lock(self) -> str:
        """Rebuild the env: the set-up writes the lock from the environment it made."""
        return self.fix_env()

    def check_lock(self, report: Report, found: ProbeReport | None) -> None:
        """The doctor's requirements.lock checks: there, pinning every declared dependency, and
        the installed versions equal to its pins (when the probe ran)."""
        report.section("Lock file (requirements.lock)")
        lock = f"{self.config.commands['lock']}   (or: make lock"
        if not (self.project / "requirements.lock").is_file():
            report.problem("requirements.lock is missing", lock + ")")
            return
        if found is None:
            return
        lacking = [r["requirement"] for r in found.get("declared", []) if not r.get("locked", True)]
        if lacking:
            report.problem(
                f"requirements.lock is out of date: it lacks {', '.join(lacking)}", self.fix_lock()
            )
        else:
            report.ok("requirements.lock pins every declared dependency")
        back = f"{self.env_python()} -m pip install -r requirements.lock   (back to the lock), or: "
        fix = back + lock + "; records the environment as it is)"
        compare_with_lock(report, found, self.config.project_slug, exact=True, fix=fix)


MANAGER = VenvManager
