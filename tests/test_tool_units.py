"""Fast unit tests of the environment tool (tools/envtool): its config, messages and fixes,
interpreter discovery, the conda tool choice, the exit status under copier, the modules each
project's copy ships. The probe's are in tests/test_probe.py, the doctor's in tests/test_doctor.py.
"""

from __future__ import annotations

import json
import stat
import sys
import typing
from pathlib import Path

import pytest
from envtool import (
    cli,
    config,
    copying,
    discovery,
    failures,
    manager,
    probe,
    report,
    running,
    shell,
)
from envtool.manager import manager_class
from envtool.managers import conda, uv, venv

from tests.conftest import (
    COMMANDS,
    HERE_VERSION,
    MANAGERS,
    TOOL,
    WINDOWS,
    env_without_dev_venv,
    good_config,
    manager_of,
    output,
    posix_only,
    read_result,
    render,
    run_captured,
    tool_copy,
)

# The real interpreter behind the test venv's python (a symlink into a venv would not run).
REAL_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ---------------------------------------------------------------- config


def test_import_hints_come_from_copier_dependencies(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text(
        '{"env_manager": "uv", "python_version": "3.12", "project_slug": "a-b",'
        ' "package_name": "a_b", "lock_tool": "uv", "commands": ' + json.dumps(COMMANDS) + ","
        ' "dependencies": [{"req": "scikit-learn>=1.4", "name": "scikit-learn", "import": "sklearn"},'
        ' {"req": "PyYAML[extra]>=6", "name": "pyyaml", "import": "yaml"}]}',
        encoding="utf-8",
    )
    loaded = config.Config.load(tmp_path)
    args = probe.project_args(loaded.package_name, loaded.project_slug, loaded.dependencies)
    assert args["hints"] == {"scikit-learn": "sklearn", "pyyaml": "yaml"}


def test_config_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(running.ToolError, match="missing") as info:
        config.Config.load(tmp_path)
    assert "copier-mlops" in info.value.fix
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text('{"env_manager": "uv"}', encoding="utf-8")
    with pytest.raises(running.ToolError, match="python_version"):
        config.Config.load(tmp_path)


# ---------------------------------------------------------------- failure messages


@pytest.mark.parametrize(
    "output",
    [
        "ERROR: No matching distribution found for no-such-pkg-xyz\n",
        "  cause: Because no-such-pkg-xyz was not found in the package registry and you require",
        "Because x depends on no-such-pkg-xyz (*) which doesn't match any versions, version ...",
        "PackagesNotFoundError: The following packages are not available from current channels:"
        "\n\n  - no-such-pkg-xyz\n",
    ],
)
def test_missing_package_is_named(output: str) -> None:
    assert failures.missing_package(output) == "no-such-pkg-xyz"


def test_run_failure_carries_the_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(running.ToolError) as info:
        running.run([sys.executable, "-c", code], tmp_path, echo=False)
    assert "exit status 3" in info.value.what
    assert info.value.why.splitlines()[-1] == "line 99"
    assert len(info.value.why.splitlines()) == running.TAIL_LINES


def test_retry_command_quotes_the_path() -> None:
    cmd = cli.retry_command(Path("/tmp/my prøject/x'y"), windows=False)
    assert cmd == "cd '/tmp/my prøject/x'\"'\"'y' && python3 tools/envtool setup"
    # Windows: any drive, cmd and PowerShell alike (the tool finds its project from its path).
    windows = cli.retry_command(Path("D:/a/my proj (1)"), windows=True)
    assert windows == f'py "{Path("D:/a/my proj (1)")}\\tools\\envtool" setup'


def test_activation_per_shell() -> None:
    assert shell.venv_activation(".venv", "posix") == "source .venv/bin/activate"
    assert shell.venv_activation(".venv", "fish") == "source .venv/bin/activate.fish"
    assert shell.venv_activation(".venv", "powershell") == ".venv\\Scripts\\Activate.ps1"
    assert shell.venv_activation(".venv", "cmd") == ".venv\\Scripts\\activate.bat"


def test_uv_downloads_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UV_OFFLINE", raising=False)
    monkeypatch.delenv("UV_PYTHON_DOWNLOADS", raising=False)
    assert uv.downloads_allowed()
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    assert not uv.downloads_allowed()
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "automatic")
    monkeypatch.setenv("UV_OFFLINE", "1")
    assert not uv.downloads_allowed()


# ---------------------------------------------------------------- interpreter discovery


@posix_only("a symlinked python3.X (a Windows python.exe needs its DLLs beside it)")
def test_finds_python_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / f"python{HERE_VERSION}").symlink_to(REAL_PYTHON)
    found = discovery.find_python(
        HERE_VERSION, {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is not None
    assert found.full_version.startswith(HERE_VERSION + ".")
    assert found.tried[0] == str(bin_dir / f"python{HERE_VERSION}")


@posix_only("pyenv's bin/python3.X layout and a symlinked interpreter")
def test_finds_python_in_pyenv_versions(tmp_path: Path) -> None:
    """pyenv's shims serve only the selected version, so its versions folder is searched."""
    version_dir = tmp_path / "pyenv" / "versions" / f"{HERE_VERSION}.99" / "bin"
    version_dir.mkdir(parents=True)
    (version_dir / f"python{HERE_VERSION}").symlink_to(REAL_PYTHON)
    (tmp_path / "pyenv" / "versions" / f"{HERE_VERSION}-dev").mkdir()  # not an exact version
    found = discovery.find_python(
        HERE_VERSION, {"PATH": str(tmp_path / "empty"), "PYENV_ROOT": str(tmp_path / "pyenv")}
    )
    assert found.python is not None
    assert str(version_dir / f"python{HERE_VERSION}") in found.tried


@posix_only("a #! script standing in for a pyenv shim")
def test_broken_shim_is_skipped_not_trusted(tmp_path: Path) -> None:
    """A `python3.X` that fails (like a pyenv shim for another version) is not an answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(
        bin_dir / "python3.99",
        "#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n",
    )
    found = discovery.find_python(
        "3.99", {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is None
    assert str(bin_dir / "python3.99") in found.tried


@posix_only("a symlinked python3 (a Windows python.exe needs its DLLs beside it)")
def test_never_switches_to_another_version(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(REAL_PYTHON)
    found = discovery.find_python(
        "3.99", {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none")}
    )
    assert found.python is None
    assert HERE_VERSION in found.other_versions()  # reported, not used


# ---------------------------------------------------------------- conda tool choice


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (["conda"], "conda"),
        (["conda", "micromamba"], "micromamba"),
        (["conda", "micromamba", "mamba"], "mamba"),
    ],
)
def test_conda_tool_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: list[str], chosen: str
) -> None:
    for name in present:  # Windows: batch files, like Miniforge's condabin\conda.bat
        if WINDOWS:
            executable(tmp_path / f"{name}.bat", "@exit /b 0\n")
        else:
            executable(tmp_path / name, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    assert Path(conda.find_conda_tool() or "").stem.lower() == chosen


def test_tool_is_real_files_in_the_template_not_a_symlink() -> None:
    """Windows git checks symlinks out as text files: the template holds the real package."""
    from tests.conftest import TOOL

    assert TOOL.is_dir() and not TOOL.is_symlink()
    assert (TOOL / "__main__.py").is_file() and (TOOL / "managers" / "uv.py").is_file()
    assert not [p for p in TOOL.rglob("*") if p.is_symlink()]


def test_lock_without_a_project_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lock", "--project", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "lock failed: tools/envtool.json is missing" in out
    assert "fix: run this command in the folder of a project generated by copier-mlops" in out


def test_exit_status_under_copier_is_always_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """copier deletes the project when a task fails, so --from-copier never exits non-zero."""
    assert (
        cli.main(["setup", "--project", str(tmp_path), "--no-input"]) == 1
    )  # by hand: real status
    assert copying.main(["setup", "--project", str(tmp_path), "--no-input", "--from-copier"]) == 0
    out = capsys.readouterr().out
    assert "FAILED at step 'read tools/envtool.json'" in out
    assert "python3 tools/envtool setup" in out
    # ... and the same, machine-readable, for roster and bench.
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["failed_step"] == "read tools/envtool.json"
    assert "missing" in result["reason"] and result["fix"] and result["steps"] == []


# ---------------------------------------------------------------- issue 12: first run


def test_path_line_appends_the_folder_for_each_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh")
    assert shell.path_line("/h/b", "posix").endswith("""'export PATH="$PATH:/h/b"' >> ~/.zshrc""")
    monkeypatch.setenv("SHELL", "/bin/bash")
    assert shell.path_line("/h/.copier-mlops/bin", "posix").endswith(
        """'export PATH="$PATH:/h/.copier-mlops/bin"' >> ~/.bashrc"""
    )
    assert shell.path_line("/h/x y/bin", "fish") == "fish_add_path --append '/h/x y/bin'"
    assert "'User') + ';C:\\u\\Scripts'" in shell.path_line("C:\\u\\Scripts", "powershell")
    assert shell.path_line("C:\\u\\Scripts", "cmd").startswith('powershell -NoProfile -Command "')


def test_unreachable_index_names_the_url_without_credentials() -> None:
    out = "error: Failed to fetch: `https://bob:s3cret@pypi.example.org/simple/numpy/`\n" \
        "  Caused by: tcp connect error: Connection refused (os error 111)"  # fmt: skip
    reason = failures.unreachable_index(out)
    assert reason == "connection refused: https://pypi.example.org/simple/numpy/"
    assert failures.unreachable_index("No matching distribution found for foo") is None
    # A proxy that inspects TLS: uv says so in its own words (seen with a bare environment).
    tls = "error: Failed to fetch: https://pypi.org/simple/matplotlib/\n  cause: invalid peer certificate: UnknownIssuer"
    assert (
        failures.unreachable_index(tls)
        == "invalid peer certificate: https://pypi.org/simple/matplotlib/"
    )
    exc = running.ToolError("failed", why=tls)
    cli.explain_install_failure(manager_of("uv"), exc)
    assert exc.what.startswith("the package index could not be reached (invalid peer certificate")
    assert "UV_NATIVE_TLS=1" in exc.fix


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dependencies": "numpy"}, '"dependencies" must be a list'),
        ({"dependencies": [{"import": "numpy"}]}, '"dependencies"[0] lacks "req"'),
        ({"dev_dependencies": [1]}, '"dev_dependencies"[0] must be a string'),
        (
            {"env_manager": "pipenv"},
            '"env_manager" must be one of conda, conda-poetry, conda-uv, poetry, uv, venv',
        ),
        ({"python_version": "3"}, '"python_version" must look like "3.12"'),
        ({"project_slug": ""}, '"project_slug" must be a non-empty string'),
        ({"jupyter_kernel": "yes"}, '"jupyter_kernel" must be true or false'),
        ({"lock_tool": "pip"}, '"lock_tool" must be one of "", poetry, uv'),
        (
            {"commands": None},
            '"commands" must be an object with the keys env, run, test, lock, activate',
        ),
        ({"commands": {"env": "uv sync"}}, '"commands" lacks "run"'),
        ({"commands": {**COMMANDS, "test": " "}}, '"commands"["test"] must be a non-empty string'),
        ({"dependencies": [{"req": "numpy"}]}, '"dependencies"[0] lacks "name"'),
        (
            {"dependencies": ["numpy"]},
            '"dependencies"[0] must be an object with the keys req, name',
        ),
    ],
)
def test_config_types_are_checked(change: dict[str, object], message: str) -> None:
    good = {"env_manager": "uv", "python_version": "3.12", "project_slug": "a", "package_name": "a",
            "commands": COMMANDS, "lock_tool": "uv",
            "dependencies": [{"req": "numpy", "name": "numpy", "import": "numpy", "conda": ""}]}  # fmt: skip
    assert config.config_problems(good) == []
    assert any(message in p for p in config.config_problems({**good, **change}))
    missing = {k: v for k, v in good.items() if k != "lock_tool"}
    assert config.config_problems(missing) == ['"lock_tool" is missing']


def test_venv_ownership(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    venv.mkdir()
    assert not manager.venv_belongs_to(venv, tmp_path, "demo")  # no pyvenv.cfg: not a venv
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = other\n", encoding="utf-8")
    assert not manager.venv_belongs_to(venv, tmp_path, "demo")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = 'demo'\n", encoding="utf-8")
    assert manager.venv_belongs_to(venv, tmp_path, "demo")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nprompt = demo-py3.12\n", encoding="utf-8")
    assert manager.venv_belongs_to(venv, tmp_path, "demo")  # Poetry's own prompt
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    info = venv / "lib" / "python3.12" / "site-packages" / "demo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "direct_url.json").write_text(
        json.dumps({"url": tmp_path.resolve().as_uri(), "dir_info": {"editable": True}}), "utf-8"
    )
    assert manager.venv_belongs_to(venv, tmp_path, "demo")


def test_the_tool_has_one_module_per_manager_of_copier_yml() -> None:
    """copier.yml's env_manager choices are the one list: the tool finds a module for each."""

    schema = typing.get_type_hints(config.Config)["env_manager"]
    assert sorted(typing.get_args(schema)) == sorted(MANAGERS)
    assert all(manager_class(m).name == m for m in MANAGERS)


@pytest.mark.parametrize("manager", MANAGERS)
def test_each_projects_tool_has_every_module_it_imports(
    template: Path, tmp_path: Path, manager: str
) -> None:
    """A project carries only its manager's modules (and no gpu.py or kernel.py here): every
    module it has imports, and the doctor runs and reports instead of crashing on an import.
    Which optional modules the tool uses is data (envtool.json's gpu_check, the manager's
    pins_lock), and the data agrees with the files copier left."""
    project = render(template, tmp_path / "p", env_manager=manager, ml_framework="none",
                     example="none", jupyter_kernel=False)  # fmt: skip
    tool = project / "tools" / "envtool"
    assert not (tool / "copying.py").exists() and not (tool / "gpu.py").exists()
    assert json.loads((project / "tools" / "envtool.json").read_text())["gpu_check"] is False
    assert (tool / "pins.py").exists() == manager_class(manager).pins_lock
    modules = sorted(
        ".".join(("envtool", *p.relative_to(tool).with_suffix("").parts))
        for p in tool.rglob("[a-z]*.py")
    )
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    env = env_without_dev_venv(None, PYTHONPATH=str(tool.parent))
    imported = run_captured([sys.executable, "-c", code, *modules], env=env)
    assert imported.returncode == 0, output(imported)
    doctor = run_captured(
        [sys.executable, tool, "doctor"], cwd=project, env=env_without_dev_venv(None)
    )
    assert doctor.returncode == 1 and "Traceback" not in output(doctor), output(doctor)
    assert "problem(s) found" in output(doctor)


# ---------------------------------------------------------------- issue 20: fixes, loading, index failures


def test_a_fix_is_never_printed_twice() -> None:
    assert report.or_make("make env", "make env") == "make env"
    assert report.or_make("uv sync", "make env") == "uv sync   (or: make env)"
    manager = manager_of("venv", commands={**COMMANDS, "env": "make env"})
    assert manager.fix_env() == "make env"


def test_a_manager_that_fails_to_load_is_reported_with_its_own_error(tmp_path: Path) -> None:
    project = tool_copy(tmp_path, good_config("uv"))
    module = project / "tools" / "envtool" / "managers" / "uv.py"
    module.write_text(module.read_text(encoding="utf-8") + "import no_such_module_xyz\n", "utf-8")
    env = env_without_dev_venv(None)
    setup = run_captured([sys.executable, project / "tools" / "envtool", "setup"], project, env)
    text = output(setup)
    assert "FAILED at step 'load the uv manager'" in text, text
    assert "ModuleNotFoundError: No module named 'no_such_module_xyz'" in text, text
    assert "read tools/envtool.json" not in text and "unexpected" not in text, text
    doctor = run_captured([sys.executable, project / "tools" / "envtool", "doctor"], project, env)
    assert doctor.returncode == 1 and "Traceback" not in output(doctor), output(doctor)
    assert "No module named 'no_such_module_xyz'" in output(doctor)


def test_extra_dependency_names_are_compared_as_pep_503_says() -> None:
    """`Foo-_Bar` is `foo-bar` however copier spelt its name (today's Jinja wrote foo--bar): the
    advice is to re-render without it, not that it was added by hand."""
    assert config.canonical("Foo-_Bar") == config.canonical("foo--bar") == "foo-bar"
    assert config.canonical("zope.Interface") == "zope-interface"
    deps = [{"req": "Foo-_Bar", "name": "foo--bar", "import": "foo_bar", "extra": True},
            {"req": "tqdm", "name": "tqdm", "import": "tqdm", "extra": True}]  # fmt: skip
    manager = manager_of("uv", dependencies=deps)
    exc = running.ToolError("failed", why="ERROR: No matching distribution found for Foo-_Bar")
    cli.explain_install_failure(manager, exc)
    assert "It comes from your answer extra_dependencies" in exc.fix, exc.fix
    assert "extra_dependencies=tqdm" in exc.fix, exc.fix
    assert probe.project_args("p", "p", deps)["hints"]["foo--bar"] == "foo_bar"


def test_pip_index_that_does_not_answer_is_named_not_the_build_backend() -> None:
    """pip in build isolation only says it found no hatchling; the index it lists is checked."""
    out = ("Looking in indexes: http://u:pw@127.0.0.1:9/simple\n"
           "ERROR: No matching distribution found for hatchling\n")  # fmt: skip
    assert failures.unreachable_index(out) == "no answer from http://127.0.0.1:9/simple"
    exc = running.ToolError("failed", why=out)
    cli.explain_install_failure(manager_of("venv"), exc)
    assert (
        exc.what
        == "the package index could not be reached (no answer from http://127.0.0.1:9/simple)"
    )
    assert "requirements.txt's first line `--index-url <URL>`" in exc.fix
    local = f"Looking in indexes: {Path(TOOL).as_uri()}\nNo matching distribution found for x\n"
    assert failures.unreachable_index(local) is None  # it answers: the package is what is missing


def test_pip_upgrade_hides_index_credentials_and_keeps_an_old_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited --index-url with credentials never reaches the screen; pip's exit 0 without
    a newer pip (the index unreachable) keeps the bundled pip and says so."""
    (tmp_path / "requirements.txt").write_text(
        "--index-url https://student:s3cret@pypi.example.org/simple\nnumpy\n", encoding="utf-8"
    )
    ran: list[list[str]] = []
    monkeypatch.setattr(venv, "capture", lambda cmd, cwd=None, timeout=60: "23.0.1\n")
    monkeypatch.setattr(
        venv, "query", lambda cmd, cwd=None, timeout=300: ran.append(cmd) or (0, "", "")
    )
    note = manager_of("venv", tmp_path).upgrade_pip()  # type: ignore[attr-defined]
    shown = capsys.readouterr().out
    assert note == "" and "s3cret" not in shown and "student" not in shown, shown
    assert "--index-url https://pypi.example.org/simple" in shown
    assert "kept pip 23.0.1 (no newer pip on the index)" in shown
    assert ran[0][-3:] == ["--index-url", "https://student:s3cret@pypi.example.org/simple", "pip"]
