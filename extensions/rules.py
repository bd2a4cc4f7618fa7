"""The answers' rules: proposed names, validators and requirement parsing, as plain functions.

copier.yml calls them in one-line Jinja (extensions/copier_mlops.py registers them); tests import
them directly. Each validator returns "" for a good answer, else the message copier shows. Only
the standard library, PyYAML and packaging (copier's own dependencies) are imported.
"""

from __future__ import annotations

import functools
import keyword
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from envtool.config import Dependency
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = Path(__file__).with_name("data.yml")


@functools.cache
def data() -> dict[str, Any]:
    """extensions/data.yml: stdlib_modules, environment_modules, known_import_names."""
    loaded: dict[str, Any] = yaml.load(DATA_FILE.read_text("utf-8"), Loader=_LOADER)
    return loaded


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when built


@functools.cache
def copier_config() -> dict[str, Any]:
    """copier.yml itself (the questions are its keys)."""
    loaded: dict[str, Any] = yaml.load((ROOT / "copier.yml").read_text("utf-8"), Loader=_LOADER)
    return loaded


@functools.cache
def question_names() -> tuple[str, ...]:
    """The asked questions, in copier.yml's order: its keys that are not settings or hidden."""
    return tuple(
        k
        for k, v in copier_config().items()
        if not k.startswith("_") and isinstance(v, dict) and v.get("when") is not False
    )


def answers_file() -> str:
    """The answers file's name (copier.yml's `_answers_file`)."""
    return str(copier_config().get("_answers_file", ".copier-answers.yml"))


@functools.cache
def stdlib_modules() -> frozenset[str]:
    """The standard library's top-level module names (data.yml's stdlib_modules)."""
    return frozenset(data()["stdlib_modules"].split())


def environment_modules() -> dict[str, str]:
    """Import name -> distribution of every top-level module the environment installs."""
    modules: dict[str, str] = data()["environment_modules"]
    return modules


def reserved_names() -> frozenset[str]:
    """Names a package may not take: keywords, standard-library and environment modules."""
    return frozenset(keyword.kwlist) | stdlib_modules() | frozenset(environment_modules())


# ---------------------------------------------------------------- names

SLUG = re.compile(r"^[a-z][a-z0-9-]*\Z")  # \Z, not $: $ also matches before a trailing newline
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*\Z")
SLUG_MAX = 64


def default_slug(project_name: str) -> str:
    """Always valid: accents are dropped (Übung -> ubung), other non-ASCII letters and symbols
    become dashes; "ml-" before a leading digit."""
    letters = unicodedata.normalize("NFKD", project_name.casefold())  # ß -> ss
    plain = "".join(c for c in letters if not unicodedata.combining(c))
    s = re.sub(r"^-+|-+$", "", re.sub(r"[^a-z0-9]+", "-", plain))
    if not s or s[0] not in "abcdefghijklmnopqrstuvwxyz":
        s = "ml-" + s
    return re.sub(r"-+$", "", s[:SLUG_MAX])


def default_package(slug: str) -> str:
    """Always valid: a reserved name (numbers, test, torch, class...) gets "_project" appended."""
    p = slug.replace("-", "_")
    return p + "_project" if p in reserved_names() else p


def check_slug(slug: str) -> str:
    """The project_slug validator: lowercase letters, digits and dashes, at most SLUG_MAX long."""
    problems: list[str] = []
    if not SLUG.search(slug):
        shown = slug.replace("\n", "\\n")
        problems.append(
            f'"{shown}" is not a valid slug: use lowercase letters, digits and dashes, starting with a letter (e.g. "mnist-digits").'
        )
    if len(slug) > SLUG_MAX:
        problems.append(
            f'"{slug[:20]}..." is {len(slug)} characters long: keep the slug to {SLUG_MAX} characters or fewer (it becomes a folder, a distribution and an image name).'
        )
    return " ".join(problems)


def check_package(name: str) -> str:
    """The package_name validator: importable, not too long, shadowing no stdlib or env module."""
    suggestion = (name.strip("_") or "my") + "_project"
    if not PACKAGE.search(name):
        shown = name.replace("\n", "\\n")
        return f'"{shown}" is not a valid Python package name: use lowercase letters, digits and underscores, not starting with a digit (e.g. "mnist_digits").'
    if len(name) > SLUG_MAX:  # the generated code's lines are checked up to this length
        return f'"{name[:20]}..." is {len(name)} characters long: keep the package name to {SLUG_MAX} characters or fewer (every import line carries it).'
    if name.startswith("__"):
        return f'"{name}" is a name Python reserves (dunder names such as __main__ have a meaning of their own): pick another name, e.g. "{suggestion}".'
    if keyword.iskeyword(name):
        return f'"{name}" is a Python keyword and cannot be imported: pick another name, e.g. "{suggestion}".'
    if name in stdlib_modules():
        return f'"{name}" is the name of a Python standard-library module; your package would shadow it (or be shadowed by it). Pick another name, e.g. "{suggestion}" or "my_{name}".'
    if name in environment_modules():
        return f'"{name}" is the import name of {environment_modules()[name]}, which the project\'s environment installs; your package would hide it (or be hidden by it). Pick another name, e.g. "{suggestion}" or "my_{name}".'
    return ""


def check_conda_name(manager: str, slug: str) -> str:
    """Refuse the slug `base` for a conda project: its env would be conda's own base env."""
    if manager.startswith("conda") and slug == "base":
        return 'The conda environment is named after the project slug, and "base" is conda\'s own environment: pick another project_slug (e.g. "base-project").'
    return ""


def check_framework(framework: str, python: str) -> str:
    """Refuse TensorFlow on Python 3.14, for which it publishes no wheels yet."""
    if framework == "tensorflow" and python == "3.14":
        return "TensorFlow publishes no wheels for Python 3.14 yet: choose python_version 3.13 (or older), or another framework."
    return ""


def default_python(running: str) -> str:
    """The Python running copier ("3.12", from its sys.version_info: no path guessing, which
    fails for Windows' python.exe) when it is a choice, else 3.12."""
    choices: list[str] = copier_config()["python_version"]["choices"]
    return running if running in choices else "3.12"


# ---------------------------------------------------------------- answers

# One-line answers refuse these (str.splitlines() also refuses \n, \r, \v, \f, U+0085, U+2028,
# U+2029 and the other line breaks): YAML, TOML and comments must not break or change them.
# Lone surrogates (undecodable command-line bytes) and U+FFFE/U+FFFF cannot be written as UTF-8
# or are not allowed in YAML.
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# What a yes/no answer given with --data/--data-file may be; copier itself turns any other text
# (e.g. "maybe") into true.
BOOL_WORDS = frozenset("true false yes no y n on off 1 0".split())
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#%&*+/=?^_`{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\Z"
)  # what the build backends accept (ASCII, one dot in the domain at least)
CREDENTIALS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")
# Only URL characters (RFC 3986) without quotes or $: no escaping needed in any generated file.
INDEX_URL = re.compile(r"^(https?|file)://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+\Z")


def is_one_line(text: str) -> bool:
    """Whether `text` is a single line without control characters (CONTROL)."""
    return text.splitlines() == [text] and not CONTROL.search(text)


def check_text(text: str, what: str, use: str = "") -> str:
    """An optional one-line text (empty is fine)."""
    if text and not is_one_line(text):
        return f"The {what} must be one line of text, without control characters{use}."
    return ""


def closest_question(key: str, questions: Sequence[str]) -> str:
    """The question sharing most two-letter sequences with `key`, or "" when none is close."""
    pairs = [key[i : i + 2].lower() for i in range(len(key) - 1)]
    best, score = "", 0
    for q in questions:
        hits = sum(pair in q for pair in pairs)
        if hits > score:
            best, score = q, hits
    return best if best and score * 2 >= len(pairs) else ""


def check_data_keys(data: Mapping[str, Any]) -> str:
    """copier ignores a --data/--data-file key that is no question: a misspelt one (env_manger)
    would silently fall back to the default."""
    questions = question_names()
    message = ""
    for key in data:
        if key.startswith("_") or key in questions:
            continue
        message += f'"{key}" (given with --data or --data-file) is not a question of this template'
        best = closest_question(key, questions)
        if best:
            message += f': did you mean "{best}"? \n'
        else:
            message += f"; the questions are: {', '.join(questions)}. \n"
    return message


def check_project_name(name: str, data: Mapping[str, Any]) -> str:
    """The first question also checks --data/--data-file as a whole."""
    message = check_data_keys(data)
    if not name.strip():
        message += 'The project name cannot be empty: type a few words, e.g. "MNIST digits".'
    elif not is_one_line(name):
        message += "The project name must be one line of text, without control characters."
    return message


def check_bool(question: str, data: Mapping[str, Any]) -> str:
    """A yes/no answer given with --data must be one of BOOL_WORDS (copier reads others as true)."""
    raw = data.get(question, True)
    if not isinstance(raw, bool) and str(raw).strip().lower() not in BOOL_WORDS:
        return f'{question}: "{raw}" is neither yes nor no: give true or false (or yes/no, y/n, on/off, 1/0).'
    return ""


def check_email(email: str) -> str:
    """The author_email validator: empty, or an address the build backends accept."""
    if email and not EMAIL.search(email):
        shown = email.replace("\n", "\\n")
        return f'"{shown}" does not look like an e-mail address: use name@example.org, or leave it empty.'
    return ""


def check_index_url(url: str) -> str:
    """Credentials would be written into pyproject.toml, lock files, CI files and the answers
    file, and committed: each tool reads them from its own store ("primary" is the index's name
    in pyproject.toml)."""
    if CREDENTIALS.search(url):
        return 'The index URL carries credentials (user:password@ or token@); they would be written into pyproject.toml, the lock files, CI files and the answers file, and committed. Give the URL without them (e.g. https://pypi.example.org/simple) and give the credentials to the tools instead: uv: UV_INDEX_PRIMARY_USERNAME and UV_INDEX_PRIMARY_PASSWORD (or ~/.netrc); pip: ~/.netrc or keyring; poetry: poetry config http-basic.primary USER PASSWORD (or POETRY_HTTP_BASIC_PRIMARY_USERNAME and _PASSWORD); conda\'s pip section: ~/.netrc; CI: a repository secret (GitHub) or a masked CI/CD variable (GitLab) named INDEX_NETRC; Docker: docker build --secret id=netrc,src=$HOME/.netrc (README.md, "Private package index").'
    if url and not INDEX_URL.search(url):
        shown = url.replace("\n", "\\n")
        return f'"{shown}" is not an index URL: give the http(s):// URL of a simple index (e.g. https://pypi.example.org/simple) or a file:// URL with forward slashes (file:///C:/packages/simple), without spaces, quotes, backslashes or $ (percent-encode them: %20), or leave it empty.'
    return ""


# ---------------------------------------------------------------- requirements

_OP = r"(?:===|==|!=|<=|>=|~=|<|>)"
# Rewrites, in order, from PEP 508 spellings with spaces ("tqdm (>=4.66)", "a>=1 , <2",
# "x [a, b]") to one word per requirement; then split on spaces and the commas between them.
REWRITES = [
    (re.compile(r"\s*\[\s*"), "["),
    (re.compile(r"\s*\]"), "]"),
    (re.compile(r"\s*,\s*(?=[^\[\]]*\])"), ","),
    (re.compile(r"\s*\(\s*(" + _OP + r"[^()]*?)\s*\)"), r"\1"),
    (re.compile(r"\s*(" + _OP + r")\s*"), r"\1"),
    (re.compile(r"\s*,\s*(?=" + _OP + ")"), ","),
    (re.compile(r",(?!" + _OP + r")(?![^\[\]]*\])"), " "),
]
# One requirement after the rewrites: name, extras, version specifiers (PEP 440 versions;
# markers and URLs are refused: they go into pyproject.toml by hand). \Z: no trailing newline.
_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"
_RELEASE = r"((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?"
_SPEC = (
    rf"((<=|>=|<|>|==|!=)[0-9]+(\.[0-9]+)*{_RELEASE}|(==|!=)[0-9]+(\.[0-9]+)*\.\*"
    rf"|~=[0-9]+(\.[0-9]+)+{_RELEASE}|===[A-Za-z0-9.+_-]+)"
)
REQUIREMENT = re.compile(rf"^{_NAME}(\[{_NAME}(,{_NAME})*\])?({_SPEC}(,{_SPEC})*)?\Z")


def split_requirements(text: str) -> list[str]:
    """extra_dependencies as one word per requirement ("a>=1 , <2" -> ["a>=1,<2"])."""
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return text.split()


def requirement_name(item: str) -> str:
    """The PEP 503 normalised name of one requirement word (`Foo-_Bar>=1` -> `foo-bar`)."""
    try:
        return canonicalize_name(Requirement(item).name)
    except ValueError:  # InvalidRequirement: the validator names it
        return canonicalize_name(re.sub(r"[\[<>=!~(].*$", "", item, flags=re.S))


def import_name(name: str) -> str:
    """The module a distribution installs, by the known exceptions or its name."""
    known: dict[str, str] = data()["known_import_names"]
    return known.get(name, name.replace("-", "_"))


def extra_requirements(text: str) -> list[Dependency]:
    """`dependencies` items for extra_dependencies (pip, uv or Poetry install them)."""
    return [
        {"req": r, "name": (n := requirement_name(r)), "import": import_name(n), "conda": "",
         "extra": True, "owner": "python"}
        for r in split_requirements(text)
    ]  # fmt: skip


def check_requirements(text: str, package: str, conda_provides: Sequence[str], tool: str) -> str:
    """Each requirement: valid, not one the conda side installs, not the project's own name."""
    message = ""
    for r in split_requirements(text):
        name = requirement_name(r)
        if not REQUIREMENT.search(r):
            message += f'"{r}" is not a valid requirement: write a package name with optional extras and version, e.g. "seaborn", "tqdm>=4.66", "numpy>=1.26,<3" or "uvicorn[standard]==0.30.0" (environment markers and URLs go into pyproject.toml by hand). '
        if name in conda_provides:
            framework = name in ("torch", "tensorflow")
            cuda = ", as conda-forge's CUDA build" if framework else ""
            cpu = (
                ", or choose accelerator=cpu to get it from the index instead" if framework else ""
            )
            message += f'"{r}": conda provides {name} in this project (environment.yml){cuda}; {tool} would install a second copy from the package index over it. Drop it from the extra dependencies (it is installed already){cpu}. '
        if import_name(name) == package:
            message += f'"{r}" is imported as "{package}", the name of your own package: rename the package (package_name) or drop this requirement. '
    return message


def check_serving(serving: str, ml_framework: str, example: str) -> str:
    """'' when the service has a model to serve: the MNIST starter's, trained by a framework."""
    if serving != "fastapi":
        return ""
    if ml_framework == "none":
        return (
            "serving=fastapi serves a trained model, and ml_framework=none has none: choose an "
            "ml_framework (sklearn, pytorch or tensorflow) with example=mnist, or serving=none."
        )
    if example != "mnist":
        return "serving=fastapi serves the MNIST starter's model: choose example=mnist, or serving=none."
    return ""
