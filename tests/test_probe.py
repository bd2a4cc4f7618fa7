"""The probe (tools/envtool/probe.py): what the set-up, the doctor and the image build run inside
the environment. Import names of distributions, failed imports, declared and broken
requirements, its arguments from the config, and that only the project's own package passes as
the project (a dependency of the same name shadows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from envtool import probe

from tests.conftest import (
    TOOL,
    run_captured,
    venv_python,
)

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


def test_probe_reports_a_broken_requirement_like_pip_check(tmp_path: Path) -> None:
    """An installed distribution whose requirement is missing or the wrong version: reported,
    and the probe exits 1 (the Docker build step fails on it)."""
    for name, requires in (("fake-a", "no-such-dep-xyz>=1"), ("fake-b", "pytest<1")):
        info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nRequires-Dist: {requires}\n"
        )
    args = json.dumps({"package": "json", "distribution": "fake-a"})
    proc = run_captured(
        [sys.executable, TOOL / "probe.py", args], env={**os.environ, "PYTHONPATH": str(tmp_path)}
    )
    report = json.loads(proc.stdout.split(probe.MARKER, 1)[1])
    assert proc.returncode == 1, proc.stderr
    broken = "\n".join(report["broken"])
    assert "fake-b 1.0 requires pytest<1, but " in broken
    assert (
        "fake-a 1.0 requires no-such-dep-xyz>=1, which is not installed" in broken
    )  # the project's own


# ---------------------------------------------------------------- issue 21: the probe's contract


def test_probe_arguments_come_from_the_config_in_one_place(tmp_path: Path) -> None:
    """project_args is the one derivation of the probe's arguments: the doctor's, and the image
    build's (`probe.py --config tools/envtool.json`) are the same."""
    deps = [{"req": "scikit-learn", "name": "scikit-learn", "import": "sklearn", "owner": "python"},
            {"req": "", "name": "pytorch-gpu", "import": "torch", "owner": "conda"}]  # fmt: skip
    args = probe.project_args("json", "x", deps)
    assert args == {"package": "json", "distribution": "x",
                    "hints": {"scikit-learn": "sklearn", "pytorch-gpu": "torch"},
                    "imports": ["sklearn", "torch"], "provided": {"pytorch-gpu": "torch"}}  # fmt: skip
    config = tmp_path / "envtool.json"
    config.write_text(json.dumps({"package_name": "json", "project_slug": "x"}), encoding="utf-8")
    proc = run_captured([sys.executable, "-I", TOOL / "probe.py", "--config", config])
    report = json.loads(proc.stdout.split(probe.MARKER, 1)[1])
    assert report["imports"][0]["module"] == "json" and not report["imports"][0]["error"]
    assert "the project (x) is not installed" in report["errors"]


def test_the_image_builds_two_steps_check_everything_once() -> None:
    """The image build probes the dependencies in the lock's layer and the project after its
    wheel (a source edit repeats only the second): each step imports its own part, and a
    dependency step does not miss the project it has not installed yet."""
    deps = probe.probe({"package": "no_such_project", "distribution": "no-such-dist",
                        "imports": ["json", "csv"], "only": "dependencies"})  # fmt: skip
    assert [r["module"] for r in deps["imports"]] == ["json", "csv"]
    assert not deps["errors"] and not probe.failed(deps)
    # pytest is installed here and requires pluggy, which the full check imports as well.
    full = probe.probe({"package": "pytest", "distribution": "pytest"})
    assert "pluggy" in [r["module"] for r in full["imports"]]
    own = probe.probe({"package": "pytest", "distribution": "pytest", "imports": ["pluggy"],
                       "only": "project"})  # fmt: skip
    assert [r["module"] for r in own["imports"]] == ["pytest"] and not probe.failed(own)
    assert own["broken"] == full["broken"]  # the requirement check runs in both
    missing = probe.probe({"package": "json", "distribution": "x", "imports": ["no_such_mod"],
                           "only": "dependencies"})  # fmt: skip
    assert probe.failed(missing)


# ---------------------------------------------------------------- only the project's own package is the project


def probe_venv(tmp_path: Path, *paths: Path) -> Path:
    """A bare venv whose site-packages puts `paths` on sys.path (as installs and editable
    installs do, through .pth files); returns its Python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv_python(venv)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "paths.pth").write_text("".join(f"{p}\n" for p in paths))
    return python


def run_probe(python: Path, project: Path, package: str) -> dict[str, Any]:
    """tools/envtool/probe.py exactly as the set-up runs it: `python -I probe.py <json>`."""
    args = {"package": package, "distribution": "p", "hints": {},
            "source": str(project / "src" / package)}  # fmt: skip
    proc = run_captured([python, "-I", TOOL / "probe.py", json.dumps(args)], cwd=project)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ENVTOOL-PROBE "))
    return json.loads(line.split(" ", 1)[1])["imports"][0]


def test_probe_accepts_only_the_projects_own_package(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "joblib").mkdir(parents=True)
    (project / "src" / "joblib" / "__init__.py").write_text("")
    other = tmp_path / "site"
    (other / "joblib").mkdir(parents=True)
    (other / "joblib" / "__init__.py").write_text("")  # a dependency of the same name
    # The dependency comes first on sys.path: the import works, but it is not the project's.
    row = run_probe(probe_venv(tmp_path / "a", other, project / "src"), project, "joblib")
    assert "shadows the project's package" in row["error"], row
    assert str(other / "joblib" / "__init__.py") in row["error"]
    # The editable install alone: the project's own file.
    assert run_probe(probe_venv(tmp_path / "b", project / "src"), project, "joblib")["error"] == ""
    # __main__ is always the running script, never the project.
    (project / "src" / "__main__").mkdir()
    (project / "src" / "__main__" / "__init__.py").write_text("")
    row = run_probe(probe_venv(tmp_path / "c", project / "src"), project, "__main__")
    assert "shadows the project's package" in row["error"], row


def test_imports_spread_over_processes_each_module_once(tmp_path: Path) -> None:
    """import_all: the modules it keeps import in the probe's process, the rest in helper
    processes (one per core), each exactly once; a helper that dies mid-import fails its
    module's row, named, and the probe itself goes on."""
    import shutil
    import sysconfig

    # The modules live in an environment's site-packages, as the probe finds them (-I: nothing
    # else is on the helpers' sys.path).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "env"], check=True)
    python = venv_python(tmp_path / "env")
    site = Path(sysconfig.get_path("purelib", vars={"base": str(tmp_path / "env")}))
    shutil.copy(probe.__file__, tmp_path / "probe.py")
    for name in ("m_here", "m_other"):  # each notes the process that imported it
        (site / f"{name}.py").write_text(
            f"import os\nwith open({str(tmp_path / name)!r} + '.pid', 'a') as f:\n"
            "    f.write(f'{os.getpid()}\\n')\n"
        )
    (site / "m_dies.py").write_text("import os\nos._exit(3)\n")
    (tmp_path / "drive.py").write_text(
        "import json, os, probe\n"
        "probe.cores = lambda: 3  # three processes on any machine\n"
        "modules = [('m_here', ('here', '1.0')), ('m_other', ('other', '')), ('m_dies', ('dies', ''))]\n"
        "rows = probe.import_all(modules, ['m_here'], {'m_dies': 100, 'm_other': 50})\n"
        "print(json.dumps({'pid': os.getpid(), 'rows': rows}))\n"
    )
    proc = subprocess.run([python, str(tmp_path / "drive.py")],
                          capture_output=True, text=True, check=True)  # fmt: skip
    out = json.loads(proc.stdout.splitlines()[-1])
    rows = out["rows"]
    assert rows["m_here"]["error"] == "" and rows["m_here"]["version"] == "1.0"
    assert rows["m_other"]["error"] == "" and rows["m_other"]["origin"].endswith("m_other.py")
    assert rows["m_dies"]["error"] == "the import process exited with 3", rows["m_dies"]
    here = (tmp_path / "m_here.pid").read_text().split()
    other = (tmp_path / "m_other.pid").read_text().split()
    assert here == [str(out["pid"])]  # once, in the probe's own process
    assert len(other) == 1 and other != here  # once, in a helper process
