"""Fast unit tests of the hook's logic: interpreter discovery, import names, messages."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from hooks import base, cli, discovery, probe
from hooks.managers import conda, uv
from tests.conftest import WINDOWS, posix_only

HERE_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# The real interpreter behind the test venv's python (a symlink into a venv would not run).
REAL_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ---------------------------------------------------------------- import names


@pytest.mark.parametrize(
    ("req", "name"),
    [
        ("numpy>=1.26", "numpy"),
        ("scikit-learn>=1.4", "scikit-learn"),
        ("uvicorn[standard]==0.30.0", "uvicorn"),
        ("zope.interface ; python_version >= '3'", "zope.interface"),
        ("  tqdm", "tqdm"),
        ("", None),
    ],
)
def test_requirement_name(req: str, name: str | None) -> None:
    assert probe.requirement_name(req) == name


def test_requirement_applies_skips_extras() -> None:
    assert probe.applies("numpy>=1")
    assert not probe.applies('pytest ; extra == "test"')
    assert not probe.applies("pytest; extra=='dev'")


def test_import_name_order() -> None:
    hints = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
    top = {
        "pyyaml": ["_yaml", "yaml"],
        "beautifulsoup4": ["bs4"],
        "tqdm": ["tqdm"],
        "attrs": ["attr", "attrs"],
    }
    assert probe.import_name("scikit-learn", hints, top) == "sklearn"  # hint wins
    assert probe.import_name("PyYAML", hints, top) == "yaml"  # normalised before lookup
    assert probe.import_name("beautifulsoup4", {}, top) == "bs4"  # from installed metadata
    assert probe.import_name("attrs", {}, top) == "attrs"  # the dist's own name when provided
    assert probe.import_name("python-dotenv", {}, {}) == "python_dotenv"  # last resort


def test_import_hints_come_from_copier_dependencies(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envsetup.json").write_text(
        '{"env_manager": "uv", "python_version": "3.12", "project_slug": "a-b",'
        ' "package_name": "a_b",'
        ' "dependencies": [{"req": "scikit-learn>=1.4", "import": "sklearn"},'
        ' {"req": "PyYAML[extra]>=6", "import": "yaml"}]}',
        encoding="utf-8",
    )
    config = base.Config.load(tmp_path)
    assert config.import_hints == {"scikit-learn": "sklearn", "pyyaml": "yaml"}


def test_probe_reports_failed_import_by_name() -> None:
    report = probe.probe("json", "no-such-dist-for-probe", {})
    assert report["rows"][0]["module"] == "json" and not report["rows"][0]["error"]
    assert "not installed" in report["error"]
    row = probe.try_import("no_such_module_for_probe", None)
    assert row["error"].startswith("ModuleNotFoundError")


def test_config_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(base.HookError, match="missing") as info:
        base.Config.load(tmp_path)
    assert "copier-mlops" in info.value.fix
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envsetup.json").write_text('{"env_manager": "uv"}', encoding="utf-8")
    with pytest.raises(base.HookError, match="python_version"):
        base.Config.load(tmp_path)


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
    assert base.missing_package(output) == "no-such-pkg-xyz"


def test_run_failure_carries_the_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(base.HookError) as info:
        base.run([sys.executable, "-c", code], tmp_path, echo=False)
    assert "exit status 3" in info.value.what
    assert info.value.why.splitlines()[-1] == "line 99"
    assert len(info.value.why.splitlines()) == base.TAIL_LINES


def test_retry_command_quotes_the_path() -> None:
    cmd = cli.retry_command(Path("/tmp/my prøject/x'y"))
    if os.name != "nt":
        assert cmd == "cd '/tmp/my prøject/x'\"'\"'y' && python3 tools/envsetup"


def test_activation_per_shell() -> None:
    assert base.venv_activation(".venv", "posix") == "source .venv/bin/activate"
    assert base.venv_activation(".venv", "fish") == "source .venv/bin/activate.fish"
    assert base.venv_activation(".venv", "powershell") == ".venv\\Scripts\\Activate.ps1"
    assert base.venv_activation(".venv", "cmd") == ".venv\\Scripts\\activate.bat"


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


def test_project_gets_a_real_copy_when_the_symlink_did_not_survive(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envsetup").write_text(
        "../../hooks", encoding="utf-8"
    )  # Windows checkout
    cli.ensure_project_copy(tmp_path)
    copied = tmp_path / "tools" / "envsetup"
    assert (copied / "__main__.py").is_file() and (copied / "managers" / "uv.py").is_file()
    assert not list(copied.rglob("__pycache__"))
    cli.ensure_project_copy(tmp_path)  # a real folder is left alone


def test_exit_status_under_copier_is_always_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """copier deletes the project when a task fails, so --from-copier never exits non-zero."""
    assert cli.main(["env", "--project", str(tmp_path), "--no-input"]) == 1  # by hand: real status
    assert cli.main(["env", "--project", str(tmp_path), "--no-input", "--from-copier"]) == 0
    out = capsys.readouterr().out
    assert "FAILED at step 'read tools/envsetup.json'" in out
    assert "python3 tools/envsetup" in out
