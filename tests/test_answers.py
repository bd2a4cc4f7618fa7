"""Validators refuse bad answers before anything is written; hostile but legal text round-trips."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from copier import run_copy

from extensions import rules
from tests.conftest import COPIER, MANAGERS, QUIET, render, tomllib

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
