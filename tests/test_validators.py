"""Validators: bad answers are refused before anything is written, with copier's message;
hostile but legal text round-trips; names never crash the questions; credentials never reach a
file (issue 12, classes 2-5).

Through the real entry points: `copier copy` in a pseudo-terminal, `--defaults`, `--data`,
`--data-file`, and copier's API; the rules (extensions/rules.py) by plain import; the Jinja of
copier.yml itself for the properties over many names (copier's own environment and filters,
thousands of evaluations in a second).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy
from dockerfile_parse import DockerfileParser
from packaging.requirements import InvalidRequirement, Requirement

from extensions import rules
from tests.conftest import (
    COPIER,
    MANAGERS,
    QUIET,
    ROOT,
    TOOL,
    dev_tool,
    posix_only,
    pty_run,
    render,
    run_captured,
    tomllib,
    venv_python,
)

# ---------------------------------------------------------------- bad answers, refused; legal text, round-tripped

BAD = [
    ("project_name", "   ", "cannot be empty"),
    ("project_slug", "My Project", "not a valid slug"),
    ("project_slug", "9lives", "not a valid slug"),
    ("project_slug", "a" * 65, "64 characters or fewer"),
    ("package_name", "my-package", "not a valid Python package name"),
    ("package_name", "2fast", "not a valid Python package name"),
    ("package_name", "class", "Python keyword"),
    ("package_name", "numbers", "standard-library module"),
    ("package_name", "random", "standard-library module"),
    ("package_name", "test", "standard-library module"),
    ("package_name", "numpy", "which the project's environment installs"),
    ("package_name", "torch", "which the project's environment installs"),
    ("package_name", "sklearn", "which the project's environment installs"),
    ("description", "two\nlines", "must be one line"),
    ("author_email", "not-an-email", "does not look like an e-mail"),
    ("author_email", "a@b", "does not look like an e-mail"),
    ("extra_dependencies", "seaborn bad!!name", '"bad!!name" is not a valid requirement'),
    ("extra_dependencies", "numpy>=", '"numpy>=" is not a valid requirement'),
    ("extra_dependencies", "git+https://x.org/a.git", "not a valid requirement"),
    ("package_index_url", "pypi.example.org", "not an index URL"),
]


@pytest.mark.parametrize(
    ("question", "value", "message"), BAD, ids=[f"{q}={v!r}"[:40] for q, v, _ in BAD]
)
def test_bad_answer_is_refused_and_nothing_written(
    template: Path, tmp_path: Path, question: str, value: str, message: str
) -> None:
    dst = tmp_path / "out"
    with pytest.raises(ValueError, match=f"question '{question}'.*{message}"):
        run_copy(
            str(template),
            dst,
            data={**QUIET, question: value},
            defaults=True,
            unsafe=True,
            quiet=True,
        )
    assert not dst.exists() or not any(dst.iterdir())


def test_impossible_combination_is_refused(template: Path, tmp_path: Path) -> None:
    data = {**QUIET, "ml_framework": "tensorflow", "python_version": "3.14"}
    with pytest.raises(ValueError, match=r"TensorFlow publishes no wheels for Python 3\.14.*3\.13"):
        run_copy(str(template), tmp_path / "out", data=data, defaults=True, unsafe=True, quiet=True)
    assert not (tmp_path / "out").exists()


def test_extra_dependency_shadowing_the_package_is_refused(template: Path, tmp_path: Path) -> None:
    data = {**QUIET, "package_name": "tqdm_tools", "extra_dependencies": "tqdm-tools"}
    with pytest.raises(ValueError, match="name of your own package"):
        run_copy(str(template), tmp_path / "out", data=data, defaults=True, unsafe=True, quiet=True)


def test_cli_shows_the_validator_message(template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    proc = subprocess.run(
        [COPIER, "copy", "--trust", "--defaults", "-d", "package_name=numbers",
         "-d", "create_env=false", str(template), str(dst)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert '"numbers" is the name of a Python standard-library module' in proc.stderr
    assert not dst.exists()


def test_stdlib_list_covers_this_python() -> None:
    listed = rules.stdlib_modules()
    public = {m for m in sys.stdlib_module_names if not m.startswith("_")}
    assert public <= listed, sorted(public - listed)


HOSTILE_DESCRIPTION = (
    'Say "hi" & it\'s \\ fine: """triple""" {{ x }} {% if %} # not a comment ünïcödé 🚀 ✓'
)
HOSTILE_AUTHOR = 'O\'Brien "Bob" \\ Ñúñez 🐍 {{ y }}'


@pytest.mark.parametrize("manager", MANAGERS)
def test_hostile_text_round_trips(template: Path, tmp_path: Path, manager: str) -> None:
    dst = render(
        template,
        tmp_path / "p",
        project_name="Hostile {{ name }} #1 ✓",
        description=HOSTILE_DESCRIPTION,
        author_name=HOSTILE_AUTHOR,
        author_email="bob@example.org",
        env_manager=manager,
    )
    pyproject = tomllib.loads((dst / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == HOSTILE_DESCRIPTION
    assert pyproject["project"]["authors"] == [{"name": HOSTILE_AUTHOR, "email": "bob@example.org"}]
    assert pyproject["project"]["name"] == "hostile-name-1"

    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["description"] == HOSTILE_DESCRIPTION
    assert answers["author_name"] == HOSTILE_AUTHOR

    readme = (dst / "README.md").read_text(encoding="utf-8")
    assert readme.splitlines()[0] == "# Hostile {{ name }} #1 ✓"
    assert HOSTILE_DESCRIPTION in readme.splitlines()
    assert HOSTILE_AUTHOR in readme

    init = (dst / "src/hostile_name_1/__init__.py").read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(init), clean=False) == HOSTILE_DESCRIPTION

    if manager.startswith("conda"):  # conda and its hybrids
        text = (dst / "environment.yml").read_text(encoding="utf-8")
        yaml.safe_load(text)
        assert text.splitlines()[0] == f"# Hostile {{{{ name }}}} #1 ✓: {HOSTILE_DESCRIPTION}"
    if (dst / "LICENSE").exists():
        assert HOSTILE_AUTHOR in (dst / "LICENSE").read_text(encoding="utf-8")


def test_very_long_names_round_trip(template: Path, tmp_path: Path) -> None:
    name = "A very long project name " * 2 + "for the digit classification course"
    dst = render(template, tmp_path / "p", project_name=name, description="x" * 2000)
    pyproject = tomllib.loads((dst / "pyproject.toml").read_text())
    # A long name gets a default slug cut to 64 characters (no trailing dash): never refused.
    assert (
        pyproject["project"]["name"]
        == "a-very-long-project-name-a-very-long-project-name-for-the-digit"
    )
    assert pyproject["project"]["description"] == "x" * 2000
    assert (dst / "README.md").read_text().startswith(f"# {name}\n")


# ---------------------------------------------------------------- the rules, by plain import

CHECKS = {
    "project_name": lambda v: rules.check_project_name(v, {}),
    "project_slug": rules.check_slug,
    "package_name": rules.check_package,
    "description": lambda v: rules.check_text(v, "description"),
    "author_email": rules.check_email,
    "extra_dependencies": lambda v: rules.check_requirements(v, "my_pkg", [], "uv"),
    "package_index_url": rules.check_index_url,
}


@pytest.mark.parametrize(
    ("question", "value", "message"), BAD, ids=[f"{q}={v!r}"[:40] for q, v, _ in BAD]
)
def test_rules_refuse_what_copier_refuses(question: str, value: str, message: str) -> None:
    assert message in CHECKS[question](value)


@pytest.mark.parametrize(
    ("question", "value"),
    [("project_name", "MNIST digits"), ("project_slug", "mnist-digits"),
     ("package_name", "mnist_digits"), ("description", ""), ("author_email", ""),
     ("author_email", "ada@example.org"), ("extra_dependencies", "seaborn tqdm>=4.66"),
     ("package_index_url", ""), ("package_index_url", "https://pypi.example.org/simple")],
)  # fmt: skip
def test_rules_accept_good_answers(question: str, value: str) -> None:
    assert CHECKS[question](value) == ""


def test_slug_failing_both_checks_reads_as_two_sentences() -> None:
    message = rules.check_slug("ABC" * 30)
    assert '(e.g. "mnist-digits"). "ABCABC' in message
    assert message.count('"ABCABC') == 2 and "90 characters long" in message


def test_extra_dependency_names_are_pep503_normalised() -> None:
    """`Foo-_Bar` is PEP 503's `foo-bar` (Jinja's rewrite made it `foo--bar`, which the tool
    then took for a package added by hand)."""
    items = rules.extra_requirements("Foo-_Bar>=1, A.B_c [x] PyYAML")
    assert [(i["req"], i["name"], i["import"]) for i in items] == [
        ("Foo-_Bar>=1", "foo-bar", "foo_bar"),
        ("A.B_c[x]", "a-b-c", "a_b_c"),
        ("PyYAML", "pyyaml", "yaml"),
    ]
    assert all(i["owner"] == "python" and i["extra"] and i["conda"] == "" for i in items)


def test_conda_provided_requirement_is_refused_by_its_normalised_name() -> None:
    message = rules.check_requirements("Torch>=2", "my_pkg", ["python", "pip", "uv", "torch"], "uv")
    assert "conda provides torch in this project" in message
    assert "choose accelerator=cpu" in message


@pytest.mark.parametrize(
    ("key", "best"), [("env_manger", "env_manager"), ("pyhton_version", "python_version"),
                      ("zzz", ""), ("x", "")],
)  # fmt: skip
def test_closest_question(key: str, best: str) -> None:
    assert rules.closest_question(key, rules.question_names()) == best


def test_yes_no_words_and_others() -> None:
    assert rules.check_bool("dockerfile", {"dockerfile": "Yes "}) == ""
    assert rules.check_bool("dockerfile", {"dockerfile": False}) == ""
    assert rules.check_bool("dockerfile", {}) == ""
    assert "neither yes nor no" in rules.check_bool("git_init", {"git_init": 2})


def test_question_names_follow_copier_yml() -> None:
    names = rules.question_names()
    assert names[:3] == ("project_name", "project_slug", "package_name")
    assert "conda_provides" not in names and "dependencies" not in names
    assert rules.answers_file() == ".copier-answers.yml"


def test_destination_check_reads_the_given_answers_file(tmp_path: Path) -> None:
    from copier.errors import UserMessageError

    from extensions.copier_mlops import check_destination

    (tmp_path / ".course-answers.yml").write_text("_src_path: x\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert check_destination(tmp_path, ".course-answers.yml") == ""
    with pytest.raises(UserMessageError, match="not a copier-mlops project"):
        check_destination(tmp_path, None)


# ---------------------------------------------------------------- names, hostile answers, credentials (issue 12)

CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
PLAIN = {
    k: v["default"] for k, v in CONFIG.items() if isinstance(v, dict) and v.get("when") is False
}


# ---------------------------------------------------------------- helpers


def parse_all(dst: Path) -> int:
    """Parse every generated file with a real parser for its format; return how many."""
    count = 0
    for path in sorted(p for p in dst.rglob("*") if p.is_file() and ".git" not in p.parts):
        text = path.read_text(encoding="utf-8")
        name = path.name
        if name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith((".yml", ".yaml")):
            yaml.safe_load(text)
        elif name.endswith((".json", ".ipynb")):
            json.loads(text)
        elif name.endswith(".py"):
            compile(text, str(path), "exec")
        elif name == "Dockerfile":
            assert DockerfileParser(path=str(path)).structure
        elif name.startswith("requirements") and name.endswith(".txt"):
            for line in text.splitlines():
                if line.strip() and not line.startswith(("#", "-")):
                    Requirement(line)
        elif name == "Makefile" and shutil.which("make"):
            proc = run_captured(["make", "-n", "-f", path, "help"], cwd=dst)
            assert "missing separator" not in proc.stderr, proc.stderr
        count += 1
    return count


def refused(exc: BaseException, question: str) -> None:
    """A validator's refusal (copier's ValueError naming the question), not a crash."""
    assert isinstance(exc, ValueError), repr(exc)
    assert f"Validation error for question '{question}'" in str(exc), str(exc)


def nothing_written(dst: Path) -> None:
    assert not dst.exists() or not any(dst.iterdir()), sorted(dst.iterdir())


def copy(template: Path, dst: Path, **data: Any) -> Path:
    run_copy(str(template), dst, data={**QUIET, **data}, defaults=True, unsafe=True, quiet=True)
    return dst


@pytest.fixture(scope="module")
def jinja(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """copier's own Jinja environment for this template (its sandbox, filters and options)."""
    from copier._main import Worker

    return Worker(src_path=str(template), dst_path=tmp_path_factory.mktemp("w")).jinja_env


COMPILED: dict[str, Any] = {}


def evaluate(jinja: Any, expr: str, **answers: Any) -> str:
    if expr not in COMPILED:
        COMPILED[expr] = jinja.from_string(expr)
    return str(COMPILED[expr].render(**{**PLAIN, **answers})).strip()


def derived(project_name: str) -> tuple[str, str, str]:
    """The slug and package name proposed for `project_name`, and the validators' verdict."""
    slug = rules.default_slug(project_name)
    package = rules.default_package(slug)
    return slug, package, rules.check_slug(slug) + rules.check_package(package)


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Übung 2: MNIST — Ana's try", "ubung-2-mnist-ana-s-try"), ("Café Núñez", "cafe-nunez"),
     ("机器学习 MNIST", "mnist"), ("Straße", "strasse")],
)  # fmt: skip
def test_accented_names_keep_their_letters(name: str, slug: str) -> None:
    assert rules.default_slug(name) == slug


@pytest.mark.parametrize("name", ["numbers", "My proj (1)", "__main__", "123", "Ünïcödé"])
def test_copier_yml_calls_the_rules(jinja: Any, name: str) -> None:
    """What copier evaluates (copier.yml's one-line calls, in its own Jinja environment) is what
    the rules return: the tests below call them directly."""
    slug = evaluate(jinja, CONFIG["project_slug"]["default"], project_name=name)
    package = evaluate(jinja, CONFIG["package_name"]["default"], project_slug=slug)
    errors = evaluate(jinja, CONFIG["project_slug"]["validator"], project_slug=slug)
    errors += evaluate(jinja, CONFIG["package_name"]["validator"], package_name=package)
    assert (slug, package, errors) == derived(name)
    wrong = evaluate(jinja, CONFIG["package_name"]["validator"], package_name=name)
    assert wrong == rules.check_package(name).strip()


def test_package_name_length_is_bounded_like_the_slug() -> None:
    """The generated code is format-checked with a name this long (test_render.py), no longer."""
    assert rules.check_package("a" * rules.SLUG_MAX) == ""
    message = rules.check_package("a" * (rules.SLUG_MAX + 1))
    assert f"is {rules.SLUG_MAX + 1} characters long" in message
    assert f"to {rules.SLUG_MAX} characters or fewer" in message


# ---------------------------------------------------------------- class 2: derived defaults

ISSUE_NAMES = [
    "numbers", "test", "torch", "Keras", "class", "__main__", "joblib", "import", "123",
    "Ünïcödé", "my proj (1)", "🚀🚀", "NumPy", "scikit-learn", "pip", "setuptools", "_pytest",
    "packaging", "None", "async", "x" * 200, "---", "   spaced   out   ", "日本語のプロジェクト",
]  # fmt: skip


def reserved() -> set[str]:
    return set(rules.reserved_names())


def test_every_derived_default_passes_its_validator() -> None:
    """Property: for every reserved word in any spelling and the names people type, the proposed
    slug and package name pass their own validators (copier ends the questions otherwise)."""
    names = set(ISSUE_NAMES)
    for word in reserved() | set(sys.stdlib_module_names):
        names |= {word, word.upper(), word.title(), word.replace("_", " "), f"{word}!", f"1{word}"}
    names |= {chr(c) * 3 for c in range(0x20, 0x250)} | {
        f"a{chr(c)}b" for c in range(0x20, 0x3000, 7)
    }
    failures = {}
    for name in names:
        slug, package, errors = derived(name)
        if errors or not package.isidentifier() or package in reserved():
            failures[name] = (slug, package, errors)
    assert not failures, dict(list(failures.items())[:5])
    assert len(names) > 3000


@pytest.mark.parametrize("python", [None, "3.15", "3.9", "3.10", "3.14", "4.0", "3.1"])
def test_python_version_default_is_always_a_choice(python: str | None) -> None:
    """Whatever Python runs copier (this one, newer, older), the default is offered; it is this
    Python's own version when that is a choice (on Windows too: nothing is read from its path)."""
    running = python or "{}.{}".format(*sys.version_info[:2])
    version = rules.default_python(running)
    assert version == (running if running in CONFIG["python_version"]["choices"] else "3.12")
    assert version in CONFIG["python_version"]["choices"]


@pytest.mark.parametrize(
    ("name", "package"),
    [("numbers", "numbers_project"), ("Keras", "keras_project"), ("class", "class_project"),
     ("joblib", "joblib_project"), ("__main__", "main"), ("123", "ml_123"),
     ("my proj (1)", "my_proj_1"), ("test", "test_project")],
)  # fmt: skip
def test_issue_examples_get_a_valid_proposal(name: str, package: str) -> None:
    assert derived(name)[1:] == (package, "")


@pytest.mark.parametrize("name", ISSUE_NAMES[:16])
def test_accepted_defaults_render_files_that_parse(
    template: Path, tmp_path: Path, name: str
) -> None:
    """`--defaults` with only the project name, through copier's API: every file parses."""
    dst = copy(template, tmp_path / "p", project_name=name)
    packages = [p.name for p in (dst / "src").iterdir()]
    assert len(packages) == 1 and packages[0].isidentifier() and packages[0] not in reserved()
    assert parse_all(dst) > 20
    assert (
        tomllib.loads((dst / "pyproject.toml").read_text("utf-8"))["project"]["name"]
        == dst.joinpath(".copier-answers.yml")
        .read_text("utf-8")
        .split("project_slug: ")[1]
        .split()[0]
    )


def interactive_copy(template: Path, dst: Path, first_answer: str) -> tuple[int, str]:
    """`copier copy --trust` on a pseudo-terminal: clear the offered project name, type ours,
    then press Enter at every later question (each proposed default is accepted as offered)."""
    typed = False

    def reply(seen: bytes) -> bytes | None:
        nonlocal typed
        if not typed and b"project's name" in seen:
            typed = True
            return b"\x15" + first_answer.encode() + b"\r"  # Ctrl-U clears the offered name
        return b"\r" if typed else None

    args = [COPIER, "copy", "--trust", "-d", "create_env=false", "-d", "git_init=false",
            template, dst]  # fmt: skip
    return pty_run(args, reply)


@posix_only("a pseudo-terminal (pty, termios)")
@pytest.mark.parametrize(
    ("name", "package"),
    [("numbers", "numbers_project"), ("Keras", "keras_project"), ("__main__", "main"),
     ("my proj (1)", "my_proj_1")],
)  # fmt: skip
def test_interactive_questions_offer_a_valid_package_name(
    template: Path, tmp_path: Path, name: str, package: str
) -> None:
    dst = tmp_path / "p"
    code, text = interactive_copy(template, dst, name)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "Validation error" not in text, text[-3000:]
    assert "Python import name of your code" in text  # the package-name question was asked
    assert [p.name for p in (dst / "src").iterdir()] == [package]
    assert parse_all(dst) > 20


# ---------------------------------------------------------------- class 3: anchoring, escaping

SEPARATORS = [
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x00",
    "\x1b",
    "\udcff",  # an undecodable byte of the command line (surrogateescape)
    "\uffff",
]
# (question, value): what users really type, unlucky pastes included.
HOSTILE: list[tuple[str, str]] = [
    *((q, "mnist" + s) for q in ("package_name", "project_slug") for s in SEPARATORS[:5]),
    *((q, f"My{s}Project") for q in ("project_name", "description", "author_name") for s in SEPARATORS),
    *(("author_email", f"ana@example.org{s}") for s in SEPARATORS[:5]),
    *(("package_index_url", f"https://pypi.example.org/simple{s}") for s in SEPARATORS[:5]),
    *(("extra_dependencies", f"tqdm{s}") for s in SEPARATORS[:5]),
    ("package_index_url", "file:///C:\\packages\\simple"),
    ("package_index_url", 'https://pypi.example.org/simple"'),
    ("package_index_url", "https://pypi.example.org/$HOME/simple"),
    ("package_index_url", "https://pypi.example.org/simple index"),
    ("package_index_url", "file:///C:/packages/simple"),
    ("package_index_url", "https://pypi.example.org/a%20b/simple?x=1&y=[2]"),
    ("project_name", 'Say "hi" \\ it\'s {{ x }} {% if %} #1 \t tab'),
    ("description", 'C:\\path\\ """triple""" \'\'\' ${HOME} `id` $(id) ünï 🚀'),
    ("author_name", "O'Brien \\ \"Bob\" ✓"),
    ("author_email", "o'brien@example.org"),
    ("author_email", "ana+ml@sub.example.org"),
    ("author_email", "ünï@example.org"),
    ("extra_dependencies", "a>=1 , <2"),
    ("extra_dependencies", "tqdm (>=4.66)"),
    ("extra_dependencies", "uvicorn [standard, http2] (>=0.30, <1)"),
    ("extra_dependencies", "seaborn, tqdm>=4.66,<5 ,rich"),
    ("extra_dependencies", 'tqdm; python_version<"3.12"'),
    ("extra_dependencies", "tqdm>=abc"),
    ("extra_dependencies", "x[\"a\"]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("question", "value"), HOSTILE, ids=[f"{q}={v!r}"[:60] for q, v in HOSTILE]
)
def test_hostile_answer_round_trips_or_is_refused(
    template: Path, tmp_path: Path, question: str, value: str
) -> None:
    """Invariant: every file of an accepted answer parses and the answer is recorded unchanged;
    anything else is refused by a validator, with nothing written."""
    dst = tmp_path / "p"
    try:
        copy(template, dst, **{question: value})
    except Exception as exc:
        refused(exc, question)
        nothing_written(dst)
        return
    assert parse_all(dst) > 20
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers[question] == value
    pyproject = tomllib.loads((dst / "pyproject.toml").read_text(encoding="utf-8"))
    if question == "description":
        assert pyproject["project"]["description"] == value
    if question == "package_index_url":
        assert pyproject["tool"]["uv"]["index"][0]["url"] == value
    if question == "extra_dependencies":
        extra = pyproject["project"]["dependencies"][4:]  # after numpy, pandas, matplotlib, sklearn
        assert extra and all(Requirement(r).marker is None for r in extra)


def test_line_breaks_are_refused_in_every_one_line_answer() -> None:
    """What the hostile matrix relies on: each separator is a line break or a control character."""
    for s in SEPARATORS:
        assert f"a{s}b".splitlines() != [f"a{s}b"] or unicodedata.category(s) in {"Cc", "Cs", "Cn"}


REQUIREMENTS = {
    "a>=1 , <2": ["a>=1,<2"],
    "tqdm (>=4.66)": ["tqdm>=4.66"],
    "uvicorn [standard, http2] (>=0.30, <1)": ["uvicorn[standard,http2]>=0.30,<1"],
    "seaborn, tqdm>=4.66,<5 ,rich": ["seaborn", "tqdm>=4.66,<5", "rich"],
    "numpy>=1.26,<3  scipy==1.*": ["numpy>=1.26,<3", "scipy==1.*"],
    "black~=24.1 ruff!=0.1.0": ["black~=24.1", "ruff!=0.1.0"],
    "Django>=5.0rc1": ["Django>=5.0rc1"],
}


def requirement_items(text: str) -> tuple[list[str], str]:
    """extra_dependencies as the rules split it, and its validator's message."""
    return rules.split_requirements(text), rules.check_requirements(text, "my_pkg", [], "")


@pytest.mark.parametrize(("text", "expected"), REQUIREMENTS.items())
def test_valid_pep508_spellings_are_accepted(text: str, expected: list[str]) -> None:
    items, message = requirement_items(text)
    assert (items, message) == (expected, "")
    for item in items:
        Requirement(item)


def test_accepted_requirements_always_parse_with_packaging() -> None:
    """Property: whatever the validator lets through is one or more PEP 508 requirements without
    markers or URLs, as packaging (the reference parser) reads them."""
    names = ["tqdm", "a", "Pillow", "uvicorn[standard]", "x.y_z", "a-", "-a", "a..b", "ü"]
    specs = ["", ">=1", ">= 1.2", " (>=1)", "==1.*", ">=1.*", "~=1", "~=1.2", "===abc", ">=1rc1",
             ">=1,<2", ", <2", ">=1 ,<2", ">=abc", "==1.0.post1.dev2", "@ https://x", ";os_name=='nt'",
             ">=1\n", "<2 ,"]  # fmt: skip
    accepted = 0
    for name in names:
        for spec in specs:
            for sep in (" ", ", ", ","):
                text = f"{name}{spec}{sep}rich"
                items, message = requirement_items(text)
                if message:
                    continue
                accepted += 1
                for item in items:
                    try:
                        req = Requirement(item)
                    except InvalidRequirement as exc:
                        pytest.fail(f"{text!r} accepted, but {item!r}: {exc}")
                    assert req.marker is None and req.url is None, text
    assert accepted > 50


DATA_FILE_CASES = {
    "block scalar package_name": ("package_name: |\n  my_pkg\n", "package_name"),
    "block scalar project_slug": ("project_slug: |\n  my-proj\n", "project_slug"),
    "block scalar index URL": ("package_index_url: |\n  https://pypi.example.org/simple\n",
                               "package_index_url"),
    "block scalar e-mail": ("author_email: |\n  ana@example.org\n", "author_email"),
    "misspelt key": ("env_manger: poetry\n", "project_name"),
    "boolean maybe": ("dockerfile: maybe\n", "dockerfile"),
    "boolean 2": ("git_init: 2\n", "git_init"),
    "choice not offered": ("ci: jenkins\n", "ci"),
    "Python not offered": ("python_version: '2.7'\n", "python_version"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DATA_FILE_CASES))
def test_data_file_answers_are_refused_before_writing(
    template: Path, tmp_path: Path, case: str
) -> None:
    content, question = DATA_FILE_CASES[case]
    data_file = tmp_path / "answers.yml"
    data_file.write_text(content, encoding="utf-8")
    dst = tmp_path / "p"
    proc = run_captured(
        [COPIER, "copy", "--trust", "--defaults", "--data-file", data_file,
         "-d", "create_env=false", template, dst]
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"Validation error for question '{question}'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "ValueError" not in proc.stderr, proc.stderr
    nothing_written(dst)
    if case == "misspelt key":
        assert '"env_manger" (given with --data or --data-file) is not a question of this ' \
            'template: did you mean "env_manager"?' in proc.stderr  # fmt: skip
    if case.startswith("boolean"):
        assert "give true or false" in proc.stderr


DATA_CLI_CASES = {
    "package shadows a dependency": (
        ["package_name=mlflow"], "package_name", '"mlflow" is the import name of mlflow'),
    "DVC remote with credentials": (
        ["data_versioning=dvc", "dvc_remote=s3://ana:s3cr3t@bucket/dvc"], "dvc_remote",
        "The DVC remote carries credentials"),
    "bad slug": (["project_slug=My_Slug"], "project_slug", '"My_Slug" is not a valid slug'),
    "manager not offered": (["env_manager=pipenv"], "env_manager",
        "this answer is not one of its choices; give one of: uv, venv, conda, poetry, "
        "conda-poetry, conda-uv"),
    "choice of a question not asked": (["accelerator=tpu"], "accelerator",
        "this answer is not one of its choices; give one of: cpu, cuda"),
    "tracker not offered": (["experiment_tracking=neptune"], "experiment_tracking",
        "this answer is not one of its choices; give one of: mlflow, wandb, none"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DATA_CLI_CASES))
def test_data_answer_refused_by_the_cli_prints_the_message_alone(
    template: Path, tmp_path: Path, case: str
) -> None:
    """`copier copy --defaults --data ...` with an answer its validator refuses: exit 1, the
    validator's message, no traceback, no secret echoed, nothing written."""
    answers, question, message = DATA_CLI_CASES[case]
    dst = tmp_path / "p"
    data = [arg for answer in answers for arg in ("--data", answer)]
    proc = run_captured(
        [
            COPIER,
            "copy",
            "--trust",
            "--defaults",
            *data,
            "--data",
            "create_env=false",
            template,
            dst,
        ]
    )
    assert proc.returncode == 1, proc.stderr
    assert f"Validation error for question '{question}': {message}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "s3cr3t" not in proc.stderr
    assert "Nothing was written" in proc.stderr
    nothing_written(dst)


def test_unknown_key_far_from_any_question_lists_the_questions(
    template: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r'"zzz" .* the questions are: project_name, project_slug'):
        copy(template, tmp_path / "p", zzz="1")
    nothing_written(tmp_path / "p")


def test_question_names_lists_every_question() -> None:
    asked = {
        k for k, v in CONFIG.items()
        if not k.startswith("_") and isinstance(v, dict) and v.get("when") is not False
    }  # fmt: skip
    assert set(rules.question_names()) == asked


@pytest.mark.parametrize(
    ("raw", "expected"), [("yes", True), ("n", False), ("0", False), ("true", True)]
)
def test_yes_no_words_are_accepted_from_data(
    template: Path, tmp_path: Path, raw: str, expected: bool
) -> None:
    dst = tmp_path / "p"
    proc = run_captured(
        [COPIER, "copy", "--trust", "--defaults", "-d", f"dockerfile={raw}",
         "-d", "create_env=false", "-d", "git_init=false", template, dst]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (dst / "Dockerfile").exists() is expected


def test_maybe_is_refused_from_data(template: Path, tmp_path: Path) -> None:
    proc = run_captured(
        [COPIER, "copy", "--trust", "--defaults", "-d", "jupyter_kernel=maybe",
         "-d", "create_env=false", template, tmp_path / "p"]
    )  # fmt: skip
    assert proc.returncode != 0
    assert 'jupyter_kernel: "maybe" is neither yes nor no' in proc.stderr
    nothing_written(tmp_path / "p")


# ---------------------------------------------------------------- class 4: shadowing names


@pytest.mark.parametrize(
    "name",
    ["__main__", "joblib", "threadpoolctl", "scipy", "dateutil", "pytz", "six", "packaging", "pip",
     "setuptools", "_pytest", "pluggy", "keras", "google", "requests", "jinja2", "sympy", "main__"],
)  # fmt: skip
def test_package_names_that_shadow_the_environment_are_refused(
    template: Path, tmp_path: Path, name: str
) -> None:
    if name == "main__":  # not reserved: accepted, as a control
        assert copy(template, tmp_path / "p", package_name=name).joinpath("src", name).is_dir()
        return
    with pytest.raises(ValueError) as info:
        copy(template, tmp_path / "p", package_name=name)
    refused(info.value, "package_name")
    suggestion = re.search(r'e\.g\. "([a-z_0-9]+)"', str(info.value))
    assert suggestion, str(info.value)
    nothing_written(tmp_path / "p")
    # The suggestion itself is accepted.
    assert copy(template, tmp_path / "q", package_name=suggestion[1]).joinpath("src").is_dir()


@pytest.mark.slow
def test_environment_modules_cover_a_real_sklearn_environment(tmp_path: Path) -> None:
    """The stored list against a real environment: the scikit-learn stack, the dev tools and the
    build tools, installed from the index; every importable top-level module must be listed
    (or be a standard-library module)."""
    uv = dev_tool("uv")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, venv], check=True, env=env)
    stack = ["numpy", "pandas", "matplotlib", "scikit-learn", "pytest", "ruff", "ipykernel",
             "pip", "setuptools", "wheel", "hatchling"]  # fmt: skip
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", venv_python(venv), *stack],
        check=True, env=env,
    )  # fmt: skip
    out = subprocess.run(
        [venv_python(venv), "-c",
         "import importlib.metadata as m; print('\\n'.join(m.packages_distributions()))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    listed = {m.lower() for m in rules.environment_modules()} | set(sys.stdlib_module_names)
    missing = sorted(
        {m.lower() for m in out if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m)} - listed
    )
    assert not missing, f"add to environment_modules in extensions/data.yml: {missing}"
    assert len(out) > 40


# ---------------------------------------------------------------- class 5: secrets

CREDENTIAL_URLS = [
    "https://user:password@pypi.example.org/simple",
    "https://token@pypi.example.org/simple",
    "http://__token__:pypi-AgEIcHlwaS5vcmc@host:8080/simple/",
    "https://user:p%40ss@host/simple",
]


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_credentials_in_the_index_url_are_refused_with_the_standard_ways(
    template: Path, tmp_path: Path, url: str
) -> None:
    dst = tmp_path / "p"
    proc = run_captured(
        [COPIER, "copy", "--trust", "--defaults", "-d", f"package_index_url={url}",
         "-d", "create_env=false", template, dst]
    )  # fmt: skip
    assert proc.returncode != 0
    message = proc.stderr
    assert "carries credentials" in message
    for way in ("UV_INDEX_PRIMARY_USERNAME", "~/.netrc", "poetry config http-basic.primary",
                "POETRY_HTTP_BASIC_PRIMARY_USERNAME", "keyring", "INDEX_NETRC",
                "docker build --secret id=netrc"):  # fmt: skip
        assert way in message, way
    assert "password@" not in message.replace("user:password@ or token@", "")
    nothing_written(dst)


@pytest.mark.parametrize("ci", ["github", "gitlab"])
@pytest.mark.parametrize("manager", MANAGERS)
def test_ci_takes_index_credentials_from_a_secret(
    template: Path, tmp_path: Path, ci: str, manager: str
) -> None:
    url = "https://pypi.example.org/simple"
    dst = render(template, tmp_path / "p", ci=ci, env_manager=manager, package_index_url=url)
    path = dst / (".github/workflows/ci.yml" if ci == "github" else ".gitlab-ci.yml")
    text = path.read_text("utf-8")
    config = yaml.safe_load(text)
    if ci == "github":
        steps = config["jobs"]["test"]["steps"]
        step = next(s for s in steps if "INDEX_NETRC" in str(s))
        assert step["env"]["INDEX_NETRC"] == "${{ secrets.INDEX_NETRC }}"
        assert 'echo "NETRC=$RUNNER_TEMP/netrc" >> "$GITHUB_ENV"' in step["run"]
        build = next(s for s in config["jobs"]["docker"]["steps"] if s.get("name") == "Build")
        assert build["with"]["secrets"].strip() == "netrc=${{ secrets.INDEX_NETRC }}"
        assert "build-args" not in build["with"]
    else:
        assert any("NETRC" in line for line in config["test"]["before_script"])
        script = " ".join(config["docker-build"]["script"])
        assert "--secret id=netrc,src=$INDEX_NETRC" in script and "--build-arg" not in script


SECRET_FILES = [".env", ".env.local", "id_rsa", "id_ed25519.pub", "server.pem", "tls.key",
                ".netrc", "credentials.json", "gcp-credentials.json", "service-account-1.json",
                ".pypirc", "secrets/token.txt"]  # fmt: skip


def test_gitignore_covers_the_usual_secret_files(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p")
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    for rel in SECRET_FILES:
        proc = run_captured(["git", "check-ignore", "-q", "--no-index", rel], cwd=dst)
        assert proc.returncode == 0, f"{rel} is not ignored"
    assert run_captured(
        ["git", "check-ignore", "-q", "--no-index", ".env.example"], cwd=dst
    ).returncode


def test_first_commit_holds_only_what_the_template_wrote(template: Path, tmp_path: Path) -> None:
    """The git-init task exactly as copier runs it, in a destination that already held the
    user's files (including ones no .gitignore would catch)."""
    dst = render(template, tmp_path / "p", project_name="numbers", ci="gitlab")
    own = {"notes.txt": "mine", "id_rsa": "KEY", ".env": "SECRET=1", "data.csv": "1,2",
           "src/numbers_project/scratch.py": "x = 1\n"}  # fmt: skip
    for rel, content in own.items():
        (dst / rel).write_text(content)
    proc = run_captured(
        [sys.executable, TOOL, "git-init", "--project", dst,
         f"--template={template}", "--answers-file=.copier-answers.yml"],
        cwd=dst,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tracked = set(run_captured(["git", "ls-files"], cwd=dst).stdout.split())
    assert not tracked & set(own), tracked & set(own)
    expected = {
        p.relative_to(dst).as_posix()
        for p in dst.rglob("*")
        if p.is_file() and ".git" not in p.parts and p.relative_to(dst).as_posix() not in own
    }
    assert tracked == expected, expected ^ tracked
    assert "left out (not written by the template" in proc.stdout
    for rel in ("notes.txt", "data.csv", "src/numbers_project/scratch.py"):
        assert rel in proc.stdout
    # Untouched: still there, still untracked.
    assert all((dst / rel).read_text("utf-8") == content for rel, content in own.items())


def test_answers_never_hold_credentials_anywhere(template: Path, tmp_path: Path) -> None:
    """A credential-free index URL is the only index text in the project, and no file holds
    anything shaped like user:password@."""
    dst = render(template, tmp_path / "p", env_manager="poetry", ci="github",
                 package_index_url="https://pypi.example.org/simple")  # fmt: skip
    for path in dst.rglob("*"):
        if path.is_file():
            assert not re.search(r"://[^/\s\"']*@", path.read_text(encoding="utf-8")), path


@pytest.mark.slow
def test_hook_sanity_import_fails_when_another_module_answers(
    template: Path, tmp_path: Path
) -> None:
    """End to end: a real venv made by `copier copy --trust`; then tools/envtool.json names a
    module the environment has (numpy), as an edit or an older template could: the set-up run
    again must say FAILED for the package, not "ok"."""
    dst = tmp_path / "p"
    proc = run_captured(
        [COPIER, "copy", "--trust", "--defaults", "-d", "env_manager=venv", "-d", "ml_framework=none",
         "-d", "example=none", "-d", "git_init=false", "-d", "python_version=3.11", template, dst]
    )  # fmt: skip
    assert proc.returncode == 0 and "Environment ready" in proc.stdout, proc.stdout + proc.stderr
    settings = dst / "tools" / "envtool.json"
    config = json.loads(settings.read_text("utf-8"))
    config["package_name"] = "numpy"
    settings.write_text(json.dumps(config))
    again = run_captured(
        [sys.executable, dst / "tools" / "envtool", "setup", "--no-input"], cwd=dst
    )
    text = again.stdout + again.stderr
    assert re.search(r"numpy +\S+ +FAILED: `import numpy` found .*site-packages", text), text
    assert "shadows the project's package" in text and "Environment ready" not in text
