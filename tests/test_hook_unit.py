"""Fast unit tests of the environment tool: interpreter discovery, the probe, messages, result."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from envtool import base, cli, discovery, probe
from envtool.managers import conda, uv

from tests.conftest import read_result

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
    parsed = probe.parse(req)
    assert (parsed.name if parsed else None) == name


def test_requirement_applies_skips_extras() -> None:
    assert probe.parse("numpy>=1")
    assert probe.parse('pytest ; extra == "test"') is None
    assert probe.parse("pytest; extra=='dev'") is None


class FakeDist:
    """What module_for reads of an installed distribution: top_level.txt, else its files."""

    def __init__(self, top: list[str], files: list[str] = ()) -> None:  # type: ignore[assignment]
        self.top, self.files = top, [Path(f) for f in files]

    def read_text(self, name: str) -> str | None:
        return "\n".join(self.top) if self.top else None


def test_import_name_order() -> None:
    hints = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
    pyyaml = FakeDist(["_yaml", "yaml"])
    assert probe.module_for(FakeDist(["sklearn"]), "scikit-learn", hints) == "sklearn"  # hint
    assert probe.module_for(pyyaml, "PyYAML", hints) == "yaml"  # normalised before lookup
    assert probe.module_for(FakeDist(["bs4"]), "beautifulsoup4", {}) == "bs4"  # metadata
    assert probe.module_for(FakeDist(["attr", "attrs"]), "attrs", {}) == "attrs"  # own name
    assert probe.module_for(FakeDist([]), "python-dotenv", {}) == "python_dotenv"  # last resort
    # Not built by setuptools (no top_level.txt): its packages, from the files it installed.
    flit = FakeDist([], ["tomli_w/__init__.py", "tomli_w/_writer.py", "x-1.0.dist-info/RECORD"])
    assert probe.module_for(flit, "tomli-w", {}) == "tomli_w"


def test_import_hints_come_from_copier_dependencies(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text(
        '{"env_manager": "uv", "python_version": "3.12", "project_slug": "a-b",'
        ' "package_name": "a_b",'
        ' "dependencies": [{"req": "scikit-learn>=1.4", "name": "scikit-learn", "import": "sklearn"},'
        ' {"req": "PyYAML[extra]>=6", "name": "pyyaml", "import": "yaml"}]}',
        encoding="utf-8",
    )
    config = base.Config.load(tmp_path)
    assert config.import_hints == {"scikit-learn": "sklearn", "pyyaml": "yaml"}


def test_probe_reports_failed_import_by_name() -> None:
    report = probe.probe({"package": "json", "distribution": "no-such-dist-for-probe"})
    assert report["imports"][0]["module"] == "json" and not report["imports"][0]["error"]
    assert report["imports"][0]["origin"].endswith("__init__.py")  # where it came from
    assert any("not installed" in e for e in report["errors"])
    row = probe.try_import("no_such_module_for_probe", "", "")
    assert row["error"].startswith("ModuleNotFoundError")
    assert probe.failed({"imports": [row]}) and not probe.failed(report)


def test_probe_finds_broken_requirements_and_declared_ones(tmp_path: Path) -> None:
    """pip check's finding from metadata, and pyproject.toml read with a real TOML parser."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nrequires-python = ">=3.10"\n'
        'dependencies = ["pytest>=1", "no-such-dist-xyz>=1"]\n'
        '[dependency-groups]\ndev = ["packaging>=999"]\n',
        encoding="utf-8",
    )
    report = probe.probe({"package": "json", "distribution": "x", "project": str(tmp_path)})
    rows = {r["name"]: r for r in report["declared"]}
    assert rows["pytest"]["ok"] and rows["pytest"]["installed"]
    assert not rows["no-such-dist-xyz"]["ok"] and not rows["no-such-dist-xyz"]["installed"]
    assert rows["packaging"]["installed"] and not rows["packaging"]["ok"]
    assert report["python_ok"] is True and "pytest" in report["distributions"]


def test_config_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(base.HookError, match="missing") as info:
        base.Config.load(tmp_path)
    assert "copier-mlops" in info.value.fix
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "envtool.json").write_text('{"env_manager": "uv"}', encoding="utf-8")
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
        assert cmd == "cd '/tmp/my prøject/x'\"'\"'y' && python3 tools/envtool setup"


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
    for name in present:
        executable(tmp_path / name, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    assert Path(conda.find_conda_tool() or "").name == chosen


def test_tool_is_real_files_in_the_template_not_a_symlink() -> None:
    """Windows git checks symlinks out as text files: the template holds the real package."""
    from tests.conftest import TOOL

    assert TOOL.is_dir() and not TOOL.is_symlink()
    assert (TOOL / "__main__.py").is_file() and (TOOL / "managers" / "uv.py").is_file()
    assert not [p for p in TOOL.rglob("*") if p.is_symlink()]


def test_exit_status_under_copier_is_always_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """copier deletes the project when a task fails, so --from-copier never exits non-zero."""
    assert (
        cli.main(["setup", "--project", str(tmp_path), "--no-input"]) == 1
    )  # by hand: real status
    assert cli.main(["setup", "--project", str(tmp_path), "--no-input", "--from-copier"]) == 0
    out = capsys.readouterr().out
    assert "FAILED at step 'read tools/envtool.json'" in out
    assert "python3 tools/envtool setup" in out
    # ... and the same, machine-readable, for roster and bench.
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["failed_step"] == "read tools/envtool.json"
    assert "missing" in result["reason"] and result["fix"] and result["steps"] == []
