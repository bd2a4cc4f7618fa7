"""Recording stand-in for conda (and micromamba): NOT conda. No conda, mamba or micromamba can be
installed on the test machine, so the tests put this script on PATH under the tool's name
(tests/conftest.py's install_conda_stand_in writes it there with the test venv's Python in its #!
line) and check the exact command lines the environment tool runs. Real conda runs in the
template's own CI.

Every call is logged, one JSON line {"tool", "args", "cwd"}, to $STANDIN_ROOT/calls.jsonl. It
answers only the commands the tests need, from $STANDIN_ROOT and the files the tests write there:

- `--version`: "<tool> 0.0.0 (stand-in)"
- `env list --json`: the folders under $STANDIN_ROOT/envs
- `env create -n NAME -f environment.yml`: $STANDIN_ROOT/envs/NAME, an empty folder (no Python),
  or, when $STANDIN_PYTHON names an interpreter, a venv of it holding $STANDIN_PACKAGES (installed
  by $STANDIN_DEV_BIN's uv), recorded
  as conda's the way conda records them (conda-meta/<name>-<version>-<build>.json listing their
  files, INSTALLER "conda"; a snapshot in $STANDIN_ROOT/conda-owned.json), with the tools of
  $STANDIN_TOOLS linked from $STANDIN_DEV_BIN (as environment.yml has conda install them); once,
  if $STANDIN_ROOT/make-it-base-like exists, conda itself recorded in it, as only base has
- `env update -n NAME ...`: checks the env exists
- `env remove -n NAME`: removes it
- `env export -n NAME`: "name: stand-in-export"
- `install -n NAME ... uv|poetry`: links that tool from $STANDIN_DEV_BIN into the env
- `install -n NAME pkg=version ...`: installs those versions (uv's pip) into the env, recorded as conda's
- `list -n NAME --explicit --md5`: an explicit lock of one package
- `compare ...`: prints $STANDIN_ROOT/compare.json's "stdout" and exits with its "status"
  (the test writes the verdict conda would give; see conftest's answer_conda_compare)

Anything else exits non-zero, naming the command.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TOOL = Path(sys.argv[0]).name
ROOT = Path(os.environ["STANDIN_ROOT"])
ENVS = ROOT / "envs"


def record(prefix: Path, names: set[str] | None = None) -> None:
    """Record dist-infos as conda does (conda-meta/<name>-<version>-<build>.json with their
    files, INSTALLER "conda"), all of them or those of `names`; snapshot what is recorded."""
    site = next(prefix.glob("lib/python*/site-packages"))
    for info in sorted(site.glob("*.dist-info")):
        name, version = info.name[: -len(".dist-info")].rsplit("-", 1)
        if names is not None and name not in names:
            continue
        for old in (prefix / "conda-meta").glob(f"{name}-*-standin_0.json"):
            old.unlink()
        files = [line.split(",")[0] for line in (info / "RECORD").read_text().splitlines()]
        rel = [str((site / f).resolve().relative_to(prefix.resolve())) for f in files]
        entry = {"name": name, "version": version, "files": rel}
        (prefix / "conda-meta" / f"{name}-{version}-standin_0.json").write_text(json.dumps(entry))
        (info / "INSTALLER").write_text("conda\n")
    snapshot = {}
    for entry_file in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(entry_file.read_text())
        digest = hashlib.sha256()
        for f in sorted(data["files"]):
            digest.update(f.encode() + (prefix / f).read_bytes())
        snapshot[data["name"]] = {"version": data["version"], "files": digest.hexdigest()}
    (ROOT / "conda-owned.json").write_text(json.dumps(snapshot))


def link_tool(prefix: Path, tool: str) -> None:
    """The env's own uv/Poetry: the test venv's."""
    (prefix / "bin" / tool).symlink_to(os.path.join(os.environ["STANDIN_DEV_BIN"], tool))


def pip_install(prefix: Path, *specs: str) -> None:
    """Install `specs` into the env with the test venv's uv (pip's own speed is not under test),
    from PyPI as conda's channels are: not from the project's index (its pyproject.toml, UV_*)."""
    uv = os.path.join(os.environ["STANDIN_DEV_BIN"], "uv")
    python = str(prefix / "bin" / "python")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX"))
    }
    cmd = [uv, "pip", "install", "-q", "--no-config", "--python", python, *specs]
    subprocess.run(cmd, check=True, env=env)


def create(prefix: Path) -> None:
    if "STANDIN_PYTHON" not in os.environ:
        prefix.mkdir(parents=True)  # an env with no Python in it
        return
    subprocess.run([os.environ["STANDIN_PYTHON"], "-m", "venv", str(prefix)], check=True)
    pip_install(prefix, *os.environ["STANDIN_PACKAGES"].split())
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "history").write_text("==> stand-in <==\n")
    record(prefix)
    if (ROOT / "make-it-base-like").exists():  # once: conda itself in it, as only base has
        (ROOT / "make-it-base-like").unlink()
        (prefix / "conda-meta" / "conda-25.1.1-py312_0.json").write_text('{"files": []}')
    for tool in os.environ.get("STANDIN_TOOLS", "").split():
        link_tool(prefix, tool)


def main(args: list[str]) -> None:
    with open(ROOT / "calls.jsonl", "a") as log:
        log.write(json.dumps({"tool": TOOL, "args": args, "cwd": os.getcwd()}) + "\n")
    env = ENVS / args[args.index("-n") + 1] if "-n" in args else None
    if args == ["--version"]:
        print(f"{TOOL} 0.0.0 (stand-in)")
    elif args[:2] == ["env", "list"]:
        print(json.dumps({"envs": [str(p) for p in sorted(ENVS.glob("*"))]}))
    elif args[:2] == ["env", "create"] and env:
        assert Path("environment.yml").is_file()
        create(env)
    elif args[:2] == ["env", "update"] and env:
        assert env.is_dir()
    elif args[:2] == ["env", "remove"] and env:
        shutil.rmtree(env)
    elif args[:2] == ["env", "export"]:
        print("name: stand-in-export")
    elif args[:1] == ["install"] and env and args[-1] in ("poetry", "uv"):
        link_tool(env, args[-1])
    elif args[:1] == ["install"] and env:
        specs = [a.replace("=", "==") for a in args[1:] if "=" in a]
        pip_install(env, *specs)
        record(env, {s.split("=")[0] for s in specs})
    elif args[:1] == ["list"] and "--explicit" in args:
        print("# This file may be used to create an environment using:")
        print("# $ conda create --name <env> --file <this file>")
        print("# platform: linux-64")
        print("@EXPLICIT")
        print("https://conda.anaconda.org/conda-forge/linux-64/python-3.12.0-stand_in.conda#00ff")
    elif args[:1] == ["compare"]:
        answer = json.loads((ROOT / "compare.json").read_text())
        print(answer["stdout"])
        sys.exit(answer["status"])
    else:
        sys.exit("stand-in: unexpected command " + " ".join(args))


main(sys.argv[1:])
