"""What the tool's parts share: the config, running tools, reading their failures, the Manager class."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the probe runs alone in the environment; the tool only reads its report
    from .probe import ProbeReport
from .shell import CONFIG_FILE, WINDOWS, command_for, remember, venv_activation, venv_python, which

RESULT_FILE = Path("tools") / "envtool-result.json"
TAIL_LINES = 25
Cmd = Sequence["str | os.PathLike[str]"]


class ToolError(Exception):
    """A failure the user can fix: what went wrong, why, and what to do about it."""

    def __init__(self, what: str, why: str = "", fix: str = "") -> None:
        """Keep the three parts; `output` starts as `why`, and run() sets it to the whole output."""
        super().__init__(what)
        self.what, self.why, self.fix = what, why, fix
        self.output = why  # a failed command's whole output (why keeps only its tail)


def say(text: str = "") -> None:
    """Print a line; never fail (after SIGHUP the terminal is gone, and the tool must go on)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def manager_names() -> list[str]:
    """The managers this copy has (a project: only its own): managers/<env_manager>.py."""
    folder = Path(__file__).resolve().parent / "managers"
    return sorted(p.stem.replace("_", "-") for p in folder.glob("[a-z]*.py"))


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


DEPENDENCY = '{"req": "...", "name": "...", "import": "..."}'
# The commands copier.yml's manager_commands gives every manager: the summary and fixes use them.
COMMANDS = ("env", "run", "test", "lock", "activate")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalises it (runs of -_. become one -, lower case), like
    packaging.utils.canonicalize_name: the tool itself runs without `packaging`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def config_problems(data: object) -> list[str]:
    """What is wrong with the types of tools/envtool.json, checked before anything is installed."""
    if not isinstance(data, dict):
        return [f"it must be a JSON object, not {type(data).__name__}"]
    problems = [
        f'"{key}" must be a non-empty string (it is {data.get(key)!r})'
        for key in ("env_manager", "python_version", "project_slug", "package_name")
        if not isinstance(data.get(key), str) or not data[key]
    ]
    if isinstance(data.get("env_manager"), str) and data["env_manager"] not in manager_names():
        problems.append(f'"env_manager" must be one of {", ".join(manager_names())}')
    version = data.get("python_version")
    if isinstance(version, str) and not re.fullmatch(r"3\.\d+", version):
        problems.append(f'"python_version" must look like "3.12" (it is {version!r})')
    deps = data.get("dependencies", [])
    if not isinstance(deps, list) or not all(
        isinstance(d, dict)
        and d.get("req")
        and d.get("name")
        and all(isinstance(d.get(k, ""), str) for k in ("req", "name", "import", "conda", "owner"))
        for d in deps
    ):
        problems.append(
            f'"dependencies" must be a list of {DEPENDENCY} objects ("req" and "name" required)'
        )
    commands = data.get("commands")
    if not isinstance(commands, dict) or not all(
        isinstance(commands.get(key), str) and (commands[key].strip() or key == "run")
        for key in COMMANDS  # run: "" for venv (activate first)
    ):
        problems.append(
            f'"commands" must map each of {", ".join(COMMANDS)} to a command string '
            f"(it is {commands!r})"
        )
    for key in ("dev_dependencies", "conda_provides"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            problems.append(f'"{key}" must be a list of strings')
    if not isinstance(data.get("jupyter_kernel", False), bool):
        problems.append('"jupyter_kernel" must be true or false')
    return problems


@dataclass(frozen=True)
class Config:
    """The answers the tool needs: tools/envtool.json, which copier renders from copier.yml."""

    project: Path
    env_manager: str
    python_version: str
    project_slug: str
    package_name: str
    project_name: str = ""
    jupyter_kernel: bool = False
    accelerator: str = "cpu"  # cuda: the sanity import requires the framework's CUDA build
    cuda_index: str = ""  # where PyTorch's CUDA wheels come from (the fix names it)
    commands: dict[str, str] = field(default_factory=dict)
    dependencies: list[dict[str, str]] = field(default_factory=list)
    dev_dependencies: list[str] = field(default_factory=list)
    conda_provides: list[str] = field(default_factory=list)  # a hybrid's conda half

    @classmethod
    def load(cls, project: Path) -> Config:
        """Load `project`'s tools/envtool.json; ToolError if missing, not JSON or badly typed."""
        path = project / CONFIG_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ToolError(
                f"{CONFIG_FILE} is missing in {project}",
                fix="run this command in the folder of a project generated by copier-mlops",
            ) from exc
        except ValueError as exc:
            raise ToolError(f"{path} is not valid JSON", why=str(exc)) from exc
        problems = config_problems(data)
        if problems:
            name = CONFIG_FILE.as_posix()
            raise ToolError(
                f"{path} is not what tools/envtool expects: " + "; ".join(problems),
                fix=f'correct it (e.g. "python_version": "3.12", "dependencies": [{DEPENDENCY}]); '
                f"`git diff {name}` shows what changed, `git checkout {name}` restores it",
            )
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        known["project_name"] = known.get("project_name") or data["project_slug"]
        return cls(project=project, **known)

    @property
    def import_hints(self) -> dict[str, str]:
        """Distribution name (PEP 503) -> import name, from copier's `dependencies` list."""
        return {canonical(d["name"]): d["import"] for d in self.dependencies if d.get("import")}


_REQ = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
# How pip, uv, Poetry and conda say that a requirement does not exist on the index (tools wrap
# long messages to the terminal's width, so words may be split by any whitespace).
MISSING_PACKAGE = [
    re.compile(rf"No\s+matching\s+distribution\s+found\s+for\s+{_REQ}"),
    re.compile(rf"Because\s+{_REQ}\s+was\s+not\s+found\s+in\s+the\s+package\s+registry"),
    re.compile(rf"depends\s+on\s+{_REQ}\s+\([^)]*\)\s+which\s+doesn't\s+match\s+any\s+versions"),
    re.compile(rf"PackagesNotFoundError:[^\n]*\n(?:\s*\n)*\s*-\s*{_REQ}"),
]
# How they say that the index could not be reached (not that a package is missing).
UNREACHABLE = re.compile(
    r"Connection refused|Failed to establish a new connection|Name or service not known|"
    r"Temporary failure in name resolution|Network is unreachable|No route to host|"
    r"dns error|ConnectTimeout|connection timed out|Could not connect|"
    r"invalid peer certificate|certificate verify failed|All attempts to connect to",
    re.IGNORECASE,
)


def missing_package(output: str) -> str | None:
    """The requirement an installer could not find, if its output says so."""
    found = next((m for p in MISSING_PACKAGE if (m := p.search(output))), None)
    return found.group(1) if found else None


def unreachable_index(output: str) -> str | None:
    """'<reason>: <URL>' when the output says the index could not be reached, or (pip: in build
    isolation it only says "No matching distribution found for hatchling") when an index it
    lists ("Looking in indexes: ...") does not answer; no credentials."""
    found = UNREACHABLE.search(output)
    if not found:
        listed = re.findall(r"Looking in indexes: ([^\n]+)", output)
        urls = [u.strip() for line in listed for u in line.split(",") if u.strip()]
        down = next((u for u in dict.fromkeys(urls) if not index_answers(u)), None)
        return f"no answer from {hide_credentials(down)}" if down else None
    url = re.search(r"https?://[^\s'\"`<>()]+", output)
    host = re.search(r"host='([^']+)', port=(\d+)", output)  # pip's urllib3 message
    poetry = re.search(r"All attempts to connect to (\S+) failed", output)
    where = url[0] if url else (f"{host[1]}:{host[2]}" if host else poetry[1] if poetry else "")
    reason = "could not connect" if poetry else found[0].lower()
    return reason + (f": {hide_credentials(where)}" if where else "")


def hide_credentials(url: str) -> str:
    """`url` without user:password@ (it never reaches the screen)."""
    return re.sub(r"//[^/@\s]*@", "//", url)


def index_answers(url: str, timeout: float = 5) -> bool:
    """Whether the index at `url` accepts a connection (a file:// index: whether it exists)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path)).exists()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def display(cmd: Cmd) -> str:
    """A command as the user could type it (POSIX quoting; the tool itself never uses a shell)."""
    return shlex.join(str(c) for c in cmd)


def clean_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """The environment for tools: without the caller's active venv, which would capture installs."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", *drop)}
    return {**env, **(extra or {})}


def run(
    cmd: Cmd,
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    what: str = "",
    fix: str = "",
    echo: bool = True,
) -> str:
    """Run `cmd` (an argument list, never a shell), stream its output indented, return it. On a
    non-zero exit raise ToolError with the tail of the output as the reason."""
    args = [str(c) for c in cmd]
    say(f"  $ {display(args)}")
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, env=dict(env) if env is not None else clean_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace",
        )  # fmt: skip
    except OSError as exc:
        raise ToolError(what or f"could not start {args[0]}", why=str(exc), fix=fix) from exc
    try:
        for line in proc.stdout or []:
            lines.append(line.rstrip("\n"))
            if echo:
                say(f"    {lines[-1]}")
        code = proc.wait()
    except BaseException:  # a signal or Ctrl-C: stop the tool too, then report
        proc.kill()
        proc.wait()
        raise
    if code:
        what = what or f"`{display(args)}` failed (exit status {code})"
        error = ToolError(what, "\n".join(lines[-TAIL_LINES:]), fix)
        error.output = "\n".join(lines)
        raise error
    return "\n".join(lines)


def stdout_of(cmd: Cmd, cwd: Path) -> str:
    """The output of a command that prints data (a lock to write); ToolError when it fails."""
    say(f"  $ {display(cmd)}")
    code, out, err = query(cmd, cwd, timeout=900)
    if code:
        raise ToolError(f"`{display(cmd)}` failed (exit status {code})", why=err.strip()[-3000:])
    return out


def query(
    cmd: Cmd, cwd: Path | None = None, timeout: float = 300, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command run quietly (`env`: variables on top of the
    tool's clean environment); 127 when it cannot run or times out."""
    try:
        out = subprocess.run(
            [str(c) for c in cmd], cwd=cwd,
            env=clean_env({"NO_COLOR": "1", "UV_NO_PROGRESS": "1", **(env or {})}),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8",
            errors="replace", timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:  # SubprocessError: the timeout
        return 127, "", str(exc)
    return out.returncode, out.stdout, out.stderr


def capture(cmd: Cmd, cwd: Path | None = None, timeout: float = 60) -> str | None:
    """stdout of a quick query command, or None when it cannot run or fails."""
    code, out, _ = query(cmd, cwd, timeout)
    return out if code == 0 else None


def python_version_of(python: Path | str) -> str | None:
    """`major.minor.micro` of an interpreter, or None when it does not run."""
    out = capture([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    return out.strip() if out else None


def install_hint(version: str) -> str:
    """How to get Python `version` on this kind of machine."""
    hints = [f"`{t} install {version}`" for t in ("pyenv", "uv python") if shutil.which(t[:5])]
    hints.append(
        f"`winget install Python.Python.{version}` or the installer from python.org"
        if WINDOWS
        else f"`brew install python@{version}` or the installer from python.org"
        if sys.platform == "darwin"
        else f"your system's package manager (e.g. `apt install python{version}-venv`)"
    )
    return f"install Python {version} with " + ", or ".join(hints)


def venv_belongs_to(venv: Path, project: Path, slug: str) -> bool:
    """Whether `venv` is provably `project`'s: its prompt is the slug (ours; Poetry's is
    "<slug>-py3.X": copier writes only into empty folders and its own projects, so no foreign
    .venv comes with the copy), or it holds an editable install of the project."""
    try:
        cfg = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not a virtual environment at all
    prompt = re.search(r"^prompt\s*=\s*(.*?)\s*$", cfg, re.MULTILINE)
    if prompt and re.fullmatch(rf"{re.escape(slug)}(-py\d+\.\d+)?", prompt[1].strip("'\"")):
        return True
    for direct_url in venv.glob("*/*/site-packages/*.dist-info/direct_url.json"):
        try:
            url = json.loads(direct_url.read_text(encoding="utf-8")).get("url", "")
        except (OSError, ValueError, AttributeError):
            continue
        if url.rstrip("/") == project.resolve().as_uri():
            return True
    return False


class Manager(ABC):
    """One environment manager. The set-up calls the steps in order; each may raise ToolError.
    The defaults suit an in-project .venv (uv, venv, Poetry); conda overrides them."""

    name = ""
    lock_file: str | None = None
    lock_args: tuple[str, ...] = ()  # the tool's own lock command (uv, poetry)
    dependency_files = "pyproject.toml"
    requirement_files: tuple[str, ...] = ()  # read by the doctor besides pyproject.toml
    pins_lock = False  # whether the probe reads the lock's pins (a pip freeze, poetry.lock)
    alternatives: tuple[str, ...] = ()  # managers that can build the project without the tool

    def __init__(self, config: Config) -> None:
        """Keep the config; tool and interpreter are set by the find steps; the env is .venv."""
        self.config = config
        self.project = config.project
        self.tool: str | None = None
        self.interpreter: Path | None = None
        self.venv = self.project / ".venv"

    # What every manager defines: the set-up's steps, in order (each returns a note for the log,
    # or raises ToolError; lock() follows install), and the doctor's check of the lock.
    @abstractmethod
    def find_tool(self) -> str:
        """Find the manager's executable (self.tool); the note names it, ToolError when missing."""

    @abstractmethod
    def find_interpreter(self) -> str:
        """Find a Python of config.python_version (self.interpreter), or say who provides one."""

    @abstractmethod
    def create(self) -> str:
        """Create the environment, or reuse a good one (idempotent); the note says which."""

    @abstractmethod
    def install(self) -> str:
        """Install the project, editable, with its runtime and dev dependencies into the env."""

    @abstractmethod
    def check_lock(self, report: Any, found: ProbeReport | None) -> None:
        """The doctor's check that the lock file is there and in step with the dependency files."""

    def lock_files(self) -> list[str]:
        """The lock files the set-up writes (committed with the first commit, when it is ours)."""
        return [self.lock_file] if self.lock_file else []

    def tool_env(self) -> dict[str, str]:
        """The variables the manager's tool runs with: the clean environment (Poetry adds some)."""
        return clean_env()

    def lock(self, refresh: bool = False) -> str:
        """Write the lock file (set-up: confirm the one the install wrote; refresh: re-resolve)."""
        assert self.tool is not None and self.lock_file is not None
        if refresh or not (self.project / self.lock_file).exists():
            run([self.tool, *self.lock_args], self.project, env=self.tool_env())
            return f"{self.name} {' '.join(self.lock_args)} wrote {self.lock_file}"
        return f"{self.lock_file} written by the install"

    def env_python(self) -> Path:
        """The environment's Python executable: the one in the project's .venv."""
        return venv_python(self.venv)

    def claim_venv(self) -> None:
        """Before creating or reusing .venv: stop unless it is provably this project's."""
        if (self.venv.exists() or self.venv.is_symlink()) and not venv_belongs_to(
            self.venv, self.project, self.config.project_slug
        ):
            raise ToolError(
                f"{self.venv} exists but is not this project's environment (no editable install "
                f"of {self.project} in it, and it was not created for {self.config.project_slug})",
                why="the tool never deletes or reuses an environment it cannot prove is this "
                "project's: it may hold another project's packages",
                fix="move it away (`mv .venv .venv.old`), or delete it if you do not need it",
            )

    def create_or_undo(self) -> str:
        """create(); a .venv this run began but could not finish (failure, Ctrl-C, SIGHUP) is
        removed: nothing in it is the user's, and half-made the retry would refuse it."""
        began = not self.venv.exists() and not self.venv.is_symlink()
        try:
            return self.create()
        except BaseException:
            if began:
                shutil.rmtree(self.venv, ignore_errors=True)
            raise

    def location(self) -> str:
        """Where the environment is, for the set-up's summary and the doctor: the .venv folder."""
        return str(self.venv)

    def activation(self) -> str:
        """How the user activates the environment in their shell: .venv's activate script."""
        return venv_activation(".venv")

    def command(self, key: str) -> str:
        """One of the manager's commands (copier.yml's manager_commands), as the user types it:
        the tool by its full path when their PATH does not find it."""
        head, sep, rest = self.config.commands.get(key, f"make {key}").partition(" ")
        return f"{self.tool_command()}{sep}{rest}" if head == self.name else f"{head}{sep}{rest}"

    def fix_env(self) -> str:
        """The doctor's fix for a missing or incomplete environment."""
        return or_make(self.command("env"), "make env")

    def fix_lock(self) -> str:
        """The doctor's fix for a lock file out of step with the dependency files."""
        return or_make(f"{self.command('lock')}, then {self.command('env')}", "make lock env")

    def unreadable_lock(self) -> ToolError | None:
        """A TOML lock (uv.lock, poetry.lock) that is there but unreadable (a bad merge, a cut
        write): the set-up and the doctor give the same fix, which moves it aside first."""
        if self.lock_file not in ("uv.lock", "poetry.lock"):
            return None
        return corrupt_lock(self.project / self.lock_file, self.fix_lock())

    def index_setting(self) -> str:
        """Where this manager's package index is set (the fix for an unreachable one)."""
        return "`pip config set global.index-url <URL>` or PIP_INDEX_URL (pip)"

    def fix_import(self, distribution: str, version: str) -> str:
        """The doctor's fix for one installed package that does not import."""
        return f"{self.env_python()} -m pip install --force-reinstall --no-deps {distribution}=={version}"

    def cuda_fix(self, module: str) -> str:
        """The command that puts the framework's CUDA build into this environment."""
        if module == "tensorflow":
            return (
                f'{self.env_python()} -m pip install "tensorflow[and-cuda]"   (Linux and WSL2 only)'
            )
        return f"{self.env_python()} -m pip install --force-reinstall --index-url {self.config.cuda_index} torch"

    def tool_command(self) -> str:
        """How the user types this manager's tool in a new terminal."""
        found = self.tool or which(self.name, self.project)
        return command_for(self.name, found) if found else self.name

    def find(self) -> str | None:
        """This manager's tool (which()), recorded for later commands (FOUND_FILE)."""
        self.tool = which(self.name, self.project)
        if self.tool:
            remember(self.project, self.name, self.tool)
        return self.tool


def or_make(command: str, make: str) -> str:
    """`command`, and the make target that does the same (once: not when they are the same)."""
    return command if command == make else f"{command}   (or: {make})"


def corrupt_lock(lock: Path, fix_lock: str) -> ToolError | None:
    """A ToolError when `lock` exists but is not TOML, with the fix that moves it aside first (a
    corrupt one fails `uv lock`/`poetry lock` too); None when it reads (or Python 3.10 has no
    TOML reader outside the env: the tools' own check then says it)."""
    try:
        import tomllib
    except ImportError:
        return None
    try:
        tomllib.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError
        aside = f"{lock.name}.broken"
        move = f'move "{lock.name}" "{aside}"' if WINDOWS else f"mv {lock.name} {aside}"
        return ToolError(
            f"{lock.name} is corrupt (not valid TOML: {exc})",
            fix=f"{move}, then: {fix_lock}   (compare with the old file; git shows its history)",
        )
    return None
