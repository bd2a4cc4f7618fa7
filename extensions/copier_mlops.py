"""Jinja helpers for copier.yml, loaded by copier-template-extensions (needs `--trust`).

- Loading it stops a copier older than MIN_COPIER (before any question or file), naming the
  version found and the upgrade command.
- The answers' rules (extensions/rules.py): default names, validators, requirement parsing.
- What the environment installs (extensions/packages.py): requirement lists, conda's half of a
  hybrid, each manager's commands.
- `check_destination(dst)`: refuse, before anything is written, a non-empty folder that is not a
  copier project (copier would overwrite the user's files or stop half-done).
- `after_copy_message(...)`: what copier prints after a copy (the next commands).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

import yaml
from copier.errors import UserMessageError
from jinja2 import Environment, pass_context
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.ext import Extension
from jinja2.runtime import Context
from packaging.version import Version

# The copier this template needs (copier.yml's `_min_copier_version` is copier-template-
# extensions' own floor, so that this check, which can print the upgrade command, runs instead
# of copier's). 9.7.0: `_copier_conf` in question defaults (9.6.0 lacks it) and
# `_copier_operation` in the tasks' `when` (older copiers skip the tasks silently).
MIN_COPIER = "9.7.0"


HERE = Path(__file__).resolve().parent
# The template's two import roots: `extensions` (this folder) and `envtool` (the tool).
ROOTS = (HERE.parent, HERE.parent / "template" / "tools")
OWN = ("extensions", "envtool")  # the top-level packages imported from ROOTS


@contextlib.contextmanager
def template_imports() -> Iterator[None]:
    """Plain `import` statements of this template's modules, by their own names (as tests and
    mypy import them): copier-template-extensions loads this file by path and puts no folder of
    the template on sys.path. For the imports only, ROOTS lead sys.path and the process's own
    `extensions`/`envtool` modules are set aside (another template version, in `copier update`,
    or the test process's), then everything is put back as it was."""
    saved_path = sys.path[:]
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in OWN}
    for name in saved:
        del sys.modules[name]
    sys.path[:0] = [str(root) for root in ROOTS]
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if n.split(".")[0] in OWN]:
            del sys.modules[name]
        sys.modules.update(saved)


with template_imports():
    # The environment tool's own lookup (standard library only), the answers' rules, the
    # packages, the render context.
    from envtool import shell

    from extensions import context, packages, rules


def check_copier(found: str) -> None:
    """Raise copier's own error (a message, no trace) when `found` is older than MIN_COPIER."""
    if Version(found) < Version(MIN_COPIER):
        raise UserMessageError(
            f"copier-mlops needs copier {MIN_COPIER} or newer; this is copier {found}. "
            "Nothing was written. Upgrade it, then run the same command again:\n"
            f"  {shell.shell_quote(sys.executable)} -m pip install --upgrade "
            f'"copier>={MIN_COPIER}" copier-template-extensions\n'
            f'  (pipx: pipx install --force "copier>={MIN_COPIER}" && '
            "pipx inject copier copier-template-extensions; "
            f'uv: uv tool install --with copier-template-extensions "copier>={MIN_COPIER}")'
        )


check_copier(importlib.metadata.version("copier"))


def check_destination(dst: object, answers_file: object = None) -> str:
    """'' when `dst` may be written; otherwise raise copier's own error (a message, no trace).
    (`_copier_operation` is not defined yet while copier asks; update and recopy always run in
    a copier project, which has its answers file: `--answers-file`'s, else copier.yml's.)"""
    folder = Path(str(dst))
    answers = Path(str(answers_file or rules.answers_file()))
    if not folder.is_dir() or (folder / answers).is_file():
        return ""  # a new or empty folder, or a copier project (update, recopy)
    # A bare `git init` is fine: the template writes no .git, and the hook commits nothing else.
    theirs = sorted(p.name for p in folder.iterdir() if p.name != ".git")
    if not theirs:
        return ""
    folder = folder.resolve()
    shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
    raise UserMessageError(
        f"{folder} already holds files that are not a copier-mlops project ({shown}).\n"
        "Nothing was written. copier-mlops only generates into a new or empty folder, so none "
        "of your files is overwritten:\n"
        f"  - give a new folder name, e.g. {shell.shell_quote(str(folder) + '-ml')}, or\n"
        "  - move your files out of this folder first, then run the same command again."
    )


class AnswerRefused(UserMessageError, ValueError):
    """A refused --data answer: copier's CLI prints the message alone (UserMessageError); run_copy
    callers catch it as the ValueError copier raises for a refused answer."""


@functools.cache
def questions() -> dict[str, dict[str, Any]]:
    """copier.yml's questions (its settings, `_...`, left out)."""
    config = yaml.safe_load((HERE.parent / "copier.yml").read_text(encoding="utf-8"))
    return {k: v for k, v in config.items() if isinstance(v, dict) and not k.startswith("_")}


def choice_problem(name: str, answer: object) -> str:
    """Why `answer` is not one of question `name`'s choices ("" when it is, or has none)."""
    choices = questions()[name].get("choices")
    if not choices:
        return ""
    values = [str(v) for v in (choices.values() if isinstance(choices, dict) else choices)]
    if str(answer) in values:
        return ""
    return "this answer is not one of its choices; give one of: " + ", ".join(values)


@pass_context
def checked_if_given(jinja: Context, name: str) -> bool:
    """True (a question's `when`); but first, an answer to `name` given with --data or
    --data-file that is not one of the question's choices, or that its validator refuses, stops
    copier with the reason, before anything is written. (copier checks such answers itself, but turns a
    refusal into a bare ValueError: a traceback, where an interactive answer gets the message.)"""
    conf = jinja.get("_copier_conf")
    data = (conf.get("data") if isinstance(conf, Mapping) else getattr(conf, "data", None)) or {}
    message = rules.check_data_keys(data)  # a misspelt key, refused at the first question
    question = questions()[name]
    if name in data and not message:
        message = choice_problem(name, data[name])
    if name in data and not message and "validator" in question:
        kind = question.get("type", "str")
        answer = str(data[name]) if kind == "str" and data[name] is not None else data[name]
        try:
            message = jinja.environment.from_string(question["validator"]).render(
                {**jinja.get_all(), name: answer}
            )
        except Exception as exc:  # as copier does: a validator that fails refuses the answer
            message = str(exc)
    if message.strip():
        # copier's own words for an interactive refusal; the answer itself is not repeated
        # (it may hold a credential).
        raise AnswerRefused(
            f"Validation error for question '{name}': {message.strip()}\nNothing was written: "
            "correct this answer (given with --data or --data-file) and run the command again."
        )
    return True


def tool_command(name: str) -> str:
    """How the user types tool `name` in a new terminal, found the way the environment tool
    finds it: its full path when their PATH lacks it."""
    found = shell.which(name)
    return shell.command_for(name, found) if found else name


def path_advice(name: str) -> str:
    """How to put tool `name` on PATH ("" when it is there, or nowhere)."""
    found = shell.which(name)
    return (shell.path_advice(name, found) or "") if found else ""


def project_manager(dst: object, answer: str) -> str:
    """The manager the project really uses: tools/envtool.json's (the set-up re-renders it when
    the user accepts its fallback to a plain venv), else the answer."""
    try:
        data = json.loads((Path(str(dst)) / shell.CONFIG_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return answer
    manager = data.get("env_manager") if isinstance(data, dict) else None
    return manager if isinstance(manager, str) else answer


def after_copy_message(
    dst: object,
    project_name: str,
    env_manager: str,
    create_env: bool,
    manager_commands: Mapping[str, Mapping[str, str]],
) -> str:
    """copier's `_message_after_copy`: where the project is and the next commands, those of the
    manager it really uses, as the user types them (uv/Poetry by full path off PATH)."""
    manager = project_manager(dst, env_manager)
    c = manager_commands[manager]
    lines = ["", f'Your project "{project_name}" is in {dst}.']
    if create_env:
        lines.append(
            "If the environment step above says FAILED, fix what it names and run the retry "
            "command it printed."
        )
    lines += ["Next:", f"  cd {shell.shell_quote(os.fspath(str(dst)))}"]
    if c["run"] and c["test"].startswith(c["run"]):  # a tool that runs commands in its env
        tool = tool_command(manager) if manager in ("uv", "poetry") else manager
        env, test = (c[key].replace(f"{manager} ", f"{tool} ", 1) for key in ("env", "test"))
        lines += [f"  {env}   # (re)create the environment", f"  {test}   # run the tests"]
        advice = path_advice(manager)
        if advice:
            lines.append(advice)
    else:
        lines += [f"  {c['activate']}", f"  {c['test']}   # run the tests"]
    return "\n".join([*lines, "README.md explains the rest.", ""])


def cache_folder() -> Path:
    """Where compiled templates are kept: the user's cache folder, per Python and Jinja version
    (Jinja's bytecode format and generated code depend on them)."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else None
    )
    root = Path(base) if base else Path.home() / ".cache"
    version = (
        f"py{sys.version_info[0]}{sys.version_info[1]}-jinja{importlib.metadata.version('jinja2')}"
    )
    return root / "copier-mlops" / "jinja" / version


def prune(folder: Path, keep: int = 2000, days: int = 30) -> None:
    """Bound the cache: past `keep` entries (each template version adds ~200), drop those not
    written for `days` days."""
    try:
        entries = list(os.scandir(folder))
        if len(entries) > keep:
            cutoff = time.time() - days * 86400
            for entry in entries:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
    except OSError:
        pass  # no cache yet, or another run pruned it first


def with_filename(code: CodeType, filename: str) -> CodeType:
    """`code`, and every code object nested in it (macros, loops), as compiled from `filename`."""
    if code.co_filename == filename:
        return code
    consts = tuple(
        with_filename(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


class TemplateCache(BytecodeCache):
    """Jinja's bytecode cache for the template files, kept in a folder and keyed by the template's
    name and source (Jinja's own FileSystemBytecodeCache keys on the file's path, which is a new
    temporary clone on every render from git, so it would never hit)."""

    def __init__(self, folder: Path) -> None:
        """Keep compiled templates in `folder` (made when the first one is written)."""
        self.folder = folder

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        """The bucket of (name, source): Jinja checks its version and the source's checksum. The
        code read is relabelled with this run's `filename` (Jinja names the template's file, in
        tracebacks too, after its code): an error never points into an old clone."""
        key = hashlib.sha256(f"{name}\0{source}".encode("utf-8", "surrogatepass")).hexdigest()
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        if bucket.code is not None and filename:
            bucket.code = with_filename(bucket.code, filename)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill the bucket from the folder; a missing or unreadable entry leaves it empty."""
        with (
            contextlib.suppress(OSError, ValueError, EOFError),
            open(self.folder / bucket.key, "rb") as file,
        ):
            bucket.load_bytecode(file)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Write the bucket whole, then rename it: a parallel run never reads half a file; a
        read-only home means no cache, and the same result."""
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, delete=False) as tmp:
                bucket.write_bytecode(tmp)
            os.replace(tmp.name, self.folder / bucket.key)


class CopierMlops(Extension):
    """The Jinja extension copier.yml loads: the rules, packages and helpers as globals."""

    def __init__(self, environment: Environment) -> None:
        """Turn on the template cache (unless COPIER_MLOPS_NO_CACHE) and register the globals."""
        super().__init__(environment)
        if not os.environ.get("COPIER_MLOPS_NO_CACHE") and environment.bytecode_cache is None:
            folder = cache_folder()
            prune(folder)
            environment.bytecode_cache = TemplateCache(folder)
        environment.globals["check_destination"] = check_destination
        environment.globals["checked_if_given"] = checked_if_given
        # "3.12": the Python running copier (copier renders in its own process).
        environment.globals["running_python"] = "{}.{}".format(*sys.version_info[:2])
        environment.globals["after_copy_message"] = after_copy_message
        for name in RULES_USED:
            environment.globals[name] = getattr(rules, name)
        for name in PACKAGES_USED:
            environment.globals[name] = getattr(packages, name)
        environment.globals["render_context"] = context.render_context
        environment.globals["asks_accelerator"] = context.asks_accelerator
        environment.globals["choose_readme_sections"] = context.readme_sections


# The rules copier.yml calls (each a one-line validator or default).
RULES_USED = [
    "default_slug", "default_package", "check_slug", "check_package", "check_project_name",
    "check_text", "check_bool", "check_email", "check_index_url", "check_requirements",
    "extra_requirements", "check_conda_name", "check_framework", "default_python", "check_serving",
]  # fmt: skip
# What copier.yml derives from the answers (each a one-line default).
PACKAGES_USED = ["conda_half", "runtime_requirements", "dev_requirements", "commands_by_manager"]
