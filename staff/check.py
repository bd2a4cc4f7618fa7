"""Check every collected submission in a sandbox against a staff-written rubric, in parallel.

    python -m staff check submissions --rubric rubric.yml --out checks --jobs 2 \\
        --cache ~/staff-cache [--shard 1/4] [--timeout 900] [--memory 4096]

For each submission `collect` took (its collect-report.json), a fresh copy of the collected
commit is made in OUT/boxes/ID, and in a bubblewrap sandbox (no network, no write outside the
copy, no view of other copies or of your home, an unprivileged user; see staff/sandbox.py):
  environment  the project's own tool builds the environment from the student's lock file
               (`python3 tools/envtool setup`), offline, from a private copy of the shared
               cache --cache DIR: DIR/uv (uv, conda-uv: --locked), DIR/pip (a wheelhouse:
               venv's pip installs with --no-index, requirements.lock as constraints),
               DIR/conda (conda's package cache, offline). Poetry cannot install offline (it
               reads the index before its cache): Poetry projects fail this check, saying so.
               Warm the cache once from a provisioned project (docs/course-staff.md 8.4).
  doctor       `python3 tools/envtool doctor`
  tests        `make test`
  lint         `make lint`
then the rubric's own checks. The rubric (YAML):
    timeout: 900                        # seconds for one student's whole check
    builtin: {environment: 1, doctor: 1, tests: {weight: 2, timeout: 300}, lint: 1}
                                        # weights (0 leaves one out), or weight and timeout
    checks:
      - name: train
        run: make train DATASET=digits && make evaluate DATASET=digits  # sandboxed shell
        timeout: 600
        weight: 3
        expect: ["models/digits_test_scores.json: accuracy >= 0.95"]  # written by the run
      - name: provided-tests
        unchanged: [tests/]             # as provisioned (git pathspecs)
      - name: model
        exists: [models/*.joblib]
A check passes or fails whole; the score is the passed weight over the total, in percent.
Each submission's result is saved as it finishes (OUT/results/ID.json, logs in OUT/logs/ID/;
its copy is deleted unless --keep-boxes), so Ctrl-C or SIGTERM leaves a consistent report of
what finished, and a re-run skips every submission whose commit and rubric are unchanged
(--force checks them again). --shard I/N
takes a stable share of the class (by a hash of the id) for one of N machines; --write-k8s
and --write-github write a Kubernetes Indexed Job or a GitHub Actions matrix that runs the N
shards; `python -m staff report` merges their folders. Without a working bubblewrap, check
refuses to run student code unless --unsafe (code you trust) is given. Exit status: 0 every
submission checked, 1 some could not be (error, interrupted), 2 nothing was attempted.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from staff import batch, collect, report, sandbox

CHECKER_VERSION = "1"  # part of each result's key: a new checker re-checks everything
BUILTIN = {
    "environment": ["python3", "tools/envtool", "setup"],
    "doctor": ["python3", "tools/envtool", "doctor"],
    "tests": ["make", "test"],
    "lint": ["make", "lint"],
}
NEEDS_ENV = ("doctor", "tests", "lint", "run")
# The tools the project's own tool may call, visible (read-only) in the sandbox and on its PATH.
SANDBOX_TOOLS = ("uv", "poetry", "conda", "mamba", "micromamba", "make", "python3")
EXPECT = re.compile(
    r"^\s*(?P<glob>[^:]+?)\s*:\s*(?P<key>[\w.\-]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S+)\s*$"
)
OPS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}  # fmt: skip
POETRY = ("poetry", "conda-poetry")
# Poetry reads each package's list of files from the index before it looks in its own cache
# (poetry/installation/chooser.py: choose_for), and the sandbox has no network.
POETRY_OFFLINE = (
    "Poetry cannot install without its package index (it asks the index for every package's "
    "files before it looks in its cache) and the sandbox has no network: check cannot build "
    "Poetry environments (docs/course-staff.md 8.4)"
)
# ruff's findings (check, format) and syntax errors: a lint failure's detail
LINT = re.compile(r"^([A-Z]{1,3}\d{3,4} |Would reformat|invalid-syntax:)")
CHECK_KEYS = {"name", "run", "timeout", "weight", "expect", "exists", "unchanged"}
MAX_METRICS_BYTES = 1_000_000


class CheckError(batch.BatchError):
    """Unusable arguments or rubric: nothing runs."""


# ------------------------------------------------------------------------------ rubric
@dataclass
class Step:
    """One check of the rubric (the built-in ones included)."""

    name: str
    weight: float = 1.0
    run: list[str] | None = None  # argv, sandboxed
    timeout: float | None = None
    expect: list[str] = field(default_factory=list)
    exists: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    builtin: bool = False


@dataclass
class Rubric:
    """The steps in order, the per-student time limit, and the digest that keys re-runs."""

    steps: list[Step]
    timeout: float | None
    digest: str


def load_rubric(path: Path) -> Rubric:
    """Parse and validate the rubric; CheckError names the first problem."""
    try:
        text = path.read_bytes()
        data = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CheckError(f"rubric {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckError(f"rubric {path} is not a mapping (timeout, builtin, checks)")
    unknown = set(data) - {"timeout", "builtin", "checks"}
    if unknown:
        raise CheckError(f"rubric {path}: unknown key(s) {', '.join(sorted(unknown))}")
    weights = {name: 1.0 for name in BUILTIN}
    limits: dict[str, float | None] = dict.fromkeys(BUILTIN)
    for name, weight in (data.get("builtin") or {}).items():
        if isinstance(weight, dict) and set(weight) <= {"weight", "timeout"}:  # {weight, timeout}
            limits[name] = float(weight["timeout"]) if weight.get("timeout") else None
            weight = weight.get("weight", 1)
        if name not in BUILTIN or not isinstance(weight, (int, float)) or weight < 0:
            raise CheckError(
                f"rubric {path}: builtin {name}: {weight!r} (names: {', '.join(BUILTIN)}; a weight >= 0)"
            )
        weights[name] = float(weight)
    steps = [Step(n, w, BUILTIN[n], limits[n], builtin=True) for n, w in weights.items() if w > 0]
    for i, item in enumerate(data.get("checks") or [], 1):
        where = f"rubric {path}, check {i}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CheckError(f"{where}: needs a name")
        bad = set(item) - CHECK_KEYS
        if bad:
            raise CheckError(
                f"{where}: unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(CHECK_KEYS))})"
            )
        if item["name"] in {s.name for s in steps}:
            raise CheckError(f"{where}: the name {item['name']!r} is used twice")
        lists: dict[str, list[str]] = {
            k: item.get(k) or [] for k in ("expect", "exists", "unchanged")
        }
        if any(
            not isinstance(v, list) or not all(isinstance(x, str) for x in v)
            for v in lists.values()
        ):
            raise CheckError(f"{where}: expect, exists and unchanged are lists of text")
        for rule in lists["expect"]:
            m = EXPECT.match(rule)
            if not m or not is_number(m["value"]):
                raise CheckError(
                    f"{where}: expect {rule!r} is not 'FILES: KEY OP NUMBER', e.g. 'models/digits_test_scores.json: accuracy >= 0.95'"
                )
        if lists["expect"] and not item.get("run"):
            raise CheckError(f"{where}: expect needs a run (the files must be written by it)")
        if not (item.get("run") or lists["exists"] or lists["unchanged"]):
            raise CheckError(f"{where}: give run, exists or unchanged")
        run = ["sh", "-c", str(item["run"])] if item.get("run") else None
        limit = float(item["timeout"]) if item.get("timeout") else None
        weight = float(item.get("weight", 1))
        steps.append(
            Step(
                item["name"],
                weight,
                run,
                limit,
                lists["expect"],
                lists["exists"],
                lists["unchanged"],
            )
        )
    timeout = float(data["timeout"]) if data.get("timeout") else None
    return Rubric(steps, timeout, hashlib.sha256(text).hexdigest())


def is_number(text: str) -> bool:
    """Whether an expect rule's right-hand side is a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------ one submission
@dataclass
class Outcome:
    """One check's result in one submission."""

    status: str  # pass | fail | timeout | skipped
    seconds: float = 0.0
    detail: str = ""
    log: str = ""


@dataclass
class Submission:
    """One student's checked submission, as saved in OUT/results/ID.json."""

    id: str
    status: str  # checked | no-submission | error
    commit: str = ""
    date: str = ""
    later_commits: int = 0
    score: float = 0.0  # percent of the rubric's weight
    points: float = 0.0
    max_points: float = 0.0
    seconds: float = 0.0
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    key: str = ""  # commit + rubric + checker: unchanged means skip on a re-run


def inside(path: Path, root: Path) -> bool:
    """Whether `path` (not a symlink) is inside `root`: student files never lead staff out."""
    return not path.is_symlink() and path.resolve().is_relative_to(root.resolve())


def metric_of(path: Path, key: str) -> float | None:
    """A number in a JSON file (dotted keys for nesting); None when absent or not a number."""
    if path.stat().st_size > MAX_METRICS_BYTES:
        return None
    try:
        value: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def expectation(rule: str, src: Path, since: float) -> tuple[bool, str]:
    """Whether a file matching the rule, written since the run started, meets it; and why."""
    m = EXPECT.match(rule)
    assert m  # validated by load_rubric
    files = [Path(p) for p in glob.glob(str(src / m["glob"]))]
    files = [p for p in files if p.is_file() and inside(p, src) and p.stat().st_mtime >= since]
    if not files:
        return False, f"{m['glob']}: no such file written by the run"
    seen = []
    for path in sorted(files):
        value = metric_of(path, m["key"])
        seen.append(f"{path.relative_to(src)}: {m['key']}={value}")
        if value is not None and OPS[m["op"]](value, float(m["value"])):
            return True, seen[-1]
    return False, f"want {m['key']} {m['op']} {m['value']}; " + "; ".join(seen[:5])


# The shared cache (--cache DIR) holds one folder per tool, warmed once by staff (see the docs).
# Each box gets a private copy of it. As root (student code runs as another user), what the
# tool only reads after warming (packages) is hard-linked, so a box costs links, not gigabytes;
# the rest (indexes, locks) is copied, so the student's tool may write it. A linked file stays
# staff's: never chown it (st_nlink > 1). As a normal user everything is copied: student code
# runs as that user, who owns the shared files and could change them through a link.
CACHE_LINKED = {
    "uv": lambda name: name == "archive-v0",  # unpacked wheels; the rest is small metadata
    "pip": lambda name: True,  # a wheelhouse for --find-links: read only
    "conda": lambda name: name != "cache",  # extracted packages; cache/ is repodata
}


def private_copy(src: Path, dst: Path, linked: Any) -> None:
    """dst: src's top-level entries, those `linked` accepts hard-linked (cp -al), the others
    copied; a cache on another file system than the box is copied whole."""
    dst.mkdir(parents=True)
    for entry in src.iterdir():
        if linked(entry.name):
            proc = subprocess.run(
                ["cp", "-al", str(entry), str(dst / entry.name)], capture_output=True, check=False
            )
            if proc.returncode == 0:
                continue
            shutil.rmtree(dst / entry.name, ignore_errors=True)
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, dst / entry.name, follow_symlinks=False)


def outside(member: tarfile.TarInfo, root: Path) -> bool:
    """Whether a member would land, or link, outside `root` (tarfile's "data" filter's rule)."""
    target = (root / member.name).resolve()
    if member.issym():
        target = (root / member.name).parent.joinpath(member.linkname).resolve()
    elif member.islnk():
        target = (root / member.linkname).resolve()
    return not target.is_relative_to(root.resolve()) or member.isdev()


def make_box(sub: collect.Result, box: Path, cache: Path | None, owner: int | None) -> Path:
    """OUT/boxes/ID: `src`, the collected commit's files (git archive: no history, no hooks),
    and `cache/TOOL`, a private copy of each of the shared cache's tool folders (packages
    linked when the sandbox runs as `owner`, another user)."""
    if box.exists():
        shutil.rmtree(box)
    src = box / "src"
    src.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "-C", sub.path, "archive", "--format=tar", sub.commit],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert archive.stdout and archive.stderr
    try:
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(src, filter="data")
            else:  # Python before 3.11.4 (Debian 12's): the same refusal by hand
                for member in tar:
                    if not outside(member, src):
                        tar.extract(member, src)
    except tarfile.ReadError:
        pass  # nothing came: git says why, below
    if archive.wait() != 0:
        lines = [x.strip() for x in archive.stderr.read().decode(errors="replace").splitlines()]
        why = " ".join(dict.fromkeys(lines[:1] + lines[-1:]))  # git's error and its fix
        raise RuntimeError(f"git archive {sub.commit} failed in {sub.path}: {why}")
    (box / "home").mkdir()
    for tool, linked in CACHE_LINKED.items():
        if cache and (cache / tool).is_dir():
            private_copy(cache / tool, box / "cache" / tool, linked if owner else lambda n: False)
    now = time.time()
    for root, _, files in os.walk(src):  # git archive dates files at the commit: maybe future
        for name in [".", *files]:
            os.utime(os.path.join(root, name), (now, now), follow_symlinks=False)
    if owner is not None:
        for root, _, files in os.walk(box):
            os.chown(root, owner, owner)
            for name in files:
                path = os.path.join(root, name)
                if os.lstat(path).st_nlink == 1:  # a linked file is the shared cache's
                    os.chown(path, owner, owner, follow_symlinks=False)
    return src


def python_for(version: str) -> str | None:
    """An interpreter of `version` ("3.11"): on PATH, else pyenv's newest; None when none."""
    found = shutil.which(f"python{version}")
    if found:
        return found
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv", "versions")
    builds = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=lambda p: len(str(p)))
    return str(builds[-1]) if builds else None


def precompile(cache: Path | None, subs: list[collect.Result]) -> None:
    """Byte-compile the uv cache's unpacked packages once per Python the class uses. uv links
    every file of a package into an environment, __pycache__ included, and a linked source has
    the compiled file's date: no student's sanity import, doctor and tests compile numpy,
    pandas or matplotlib again (seconds of CPU each). Later runs find them compiled."""
    archive = cache / "uv" / "archive-v0" if cache else None
    if archive is None or not archive.is_dir():
        return
    versions = set()
    for sub in subs:
        try:
            config = json.loads(Path(sub.path, "tools", "envtool.json").read_text("utf-8"))
            versions.add(str(config["python_version"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for version in sorted(versions):
        python = python_for(version) if re.fullmatch(r"3\.\d+", version) else None
        if python:
            byte_compile(python, [archive])


def byte_compile(python: str, folders: Sequence[Path]) -> None:
    """Compile the modules under `folders` with `python`, on every core; packages' own test
    suites are left out, and their odd files (Python 2 examples, templates) that fail to compile
    are theirs, not an error."""
    skip = r"[/\\]tests?[/\\]"
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "-x", skip, *map(str, folders)],
                   capture_output=True, check=False)  # fmt: skip


def unchanged(sub: collect.Result, paths: list[str]) -> tuple[bool, str]:
    """Whether the paths are as provisioned (the first commit), per git."""
    proc = subprocess.run(
        ["git", "-C", sub.path, "diff", "--name-only", sub.base, sub.commit, "--", *paths],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    changed = proc.stdout.split()
    if proc.returncode != 0:
        return False, proc.stderr.strip()
    return not changed, ("changed: " + ", ".join(changed[:10])) if changed else "unchanged"


def manager_of(src: Path) -> str:
    """The submission's environment manager (tools/envtool.json); "" when unreadable."""
    try:
        config = json.loads((src / "tools" / "envtool.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    manager = config.get("env_manager") if isinstance(config, dict) else None
    return manager if isinstance(manager, str) else ""


def sandbox_env(box: Path, manager: str) -> dict[str, str]:
    """The environment inside the sandbox: offline, from the student's lock, each tool's cache
    the box's private copy (`manager` picks the variables that matter; the others are harmless)."""
    cache, src = box / "cache", box / "src"
    tools = [str(Path(p).parent) for p in map(shutil.which, SANDBOX_TOOLS) if p]
    env = {
        "PATH": os.pathsep.join(dict.fromkeys([*tools, "/usr/local/bin", "/usr/bin", "/bin"])),
        "HOME": str(box / "home"),  # the student's: writable (kernels, caches), deleted with it
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PIP_NO_INDEX": "1",  # pip (venv, conda's pip section) only from the wheelhouse
        "PIP_FIND_LINKS": str(cache / "pip"),
    }
    if manager in ("uv", "conda-uv"):
        env |= {
            "UV_CACHE_DIR": str(cache / "uv"),
            "UV_OFFLINE": "1",
            "UV_LOCKED": "1",  # the student's uv.lock, as it is
            "UV_PYTHON_DOWNLOADS": "never",
            # The cache's files are staff's (as root) or copies: uv may not hard-link them
            # (fs.protected_hardlinks) and would copy every package; a symlink costs nothing,
            # and the cache's byte-compiled files come with the sources (precompile).
            "UV_LINK_MODE": "symlink",
        }
    elif manager in POETRY:  # no cache helps it (POETRY_OFFLINE); no keyring prompt at least
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    elif manager == "venv":  # requirements.lock's exact versions (pip freeze), as constraints
        env["PIP_CONSTRAINT"] = str(src / "requirements.lock")
    if manager.startswith("conda"):  # conda's package cache, offline; the env inside the box
        env |= {
            "CONDA_PKGS_DIRS": str(cache / "conda"),
            "CONDA_OFFLINE": "true",
            "CONDA_ENVS_PATH": str(box / "conda-envs"),
        }
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    if Path(pyenv, "versions").is_dir():
        env["PYENV_ROOT"] = pyenv  # the tool looks for Pythons there (HOME is not staff's)
    return env


def check_one(
    sub: collect.Result, rubric: Rubric, out: Path, tools: sandbox.Sandbox, slot: int,
    timeout: float, cache: Path | None, stop: threading.Event,
) -> Submission:  # fmt: skip
    """Every step of the rubric for one submission; its Submission."""
    started = time.monotonic()
    res = Submission(sub.id, "checked", sub.commit, sub.date, sub.later_commits)
    res.weights = {s.name: s.weight for s in rubric.steps}
    res.max_points = sum(res.weights.values())
    logs = out / "logs" / sub.id
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    box = out / "boxes" / sub.id
    src = make_box(sub, box, cache, tools.owner(slot))
    manager = manager_of(src)
    env = sandbox_env(box, manager)
    env_ok = True
    for step in rubric.steps:
        if stop.is_set():
            raise KeyboardInterrupt
        log = logs / f"{step.name}.log"
        left = timeout - (time.monotonic() - started)
        outcome = Outcome("pass", log=str(log.relative_to(out)))
        if step.run and (not env_ok and step.name != "environment"):
            outcome = Outcome("skipped", detail="no environment")
        elif step.run and left <= 0:
            outcome = Outcome("timeout", detail=f"the student's {timeout:.0f}s were used up")
        elif step.run:
            limit = min(left, step.timeout or left)
            status, seconds = tools.run(
                step.run, box=box, cwd=src, env=env, slot=slot, timeout=limit, log=log
            )
            outcome.seconds = round(seconds, 1)
            if status == "timeout":
                outcome.status, outcome.detail = "timeout", f"killed after {limit:.0f}s"
            elif status == "fail":
                outcome.status, outcome.detail = "fail", last_lines(log)
                if manager in POETRY and "All attempts to connect" in log.read_text("utf-8"):
                    outcome.detail = f"{POETRY_OFFLINE} | {outcome.detail}"
            for rule in step.expect if outcome.status == "pass" else ():
                ok, why = expectation(rule, src, time.time() - seconds - 1)
                outcome.detail = why
                if not ok:
                    outcome.status = "fail"
                    break
        for pattern in step.exists if outcome.status == "pass" else ():
            hits = [p for p in glob.glob(str(src / pattern)) if inside(Path(p), src)]
            if not hits:
                outcome.status, outcome.detail = "fail", f"missing: {pattern}"
        if step.unchanged and outcome.status == "pass":
            ok, why = unchanged(sub, step.unchanged)
            outcome.status, outcome.detail = ("pass" if ok else "fail"), why
        if step.name == "environment" and outcome.status != "pass":
            env_ok = False
        if stop.is_set():
            raise KeyboardInterrupt  # killed by Ctrl-C: not a result
        res.checks[step.name] = asdict(outcome)
    res.points = sum(res.weights[n] for n, c in res.checks.items() if c["status"] == "pass")
    res.score = round(100 * res.points / res.max_points, 1) if res.max_points else 0.0
    res.seconds = round(time.monotonic() - started, 1)
    return res


def last_lines(log: Path, n: int = 2) -> str:
    """Why a command failed, from its log: the environment tool's FAILED line, else the last
    error line, else the last lines."""
    lines = [x.strip() for x in log.read_text("utf-8", errors="replace").splitlines() if x.strip()]
    lines = [x for x in lines[:-1] if not x.startswith(("make: Warning", "make: ***"))]  # [exit]
    hits = [x for x in lines if any(m in x for m in ("FAILED", "error:", "Error")) or LINT.match(x)]
    return " | ".join(x[:240] for x in (hits or lines)[-n:])


# ------------------------------------------------------------------------------ the class
def parse_shard(text: str | None) -> tuple[int, int]:
    """--shard I/N as (I, N), 1 <= I <= N."""
    if not text:
        return 1, 1
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise CheckError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. 2/8")
    return int(m[1]), int(m[2])


def in_shard(student: str, shard: tuple[int, int]) -> bool:
    """A stable share: the same id is always in the same shard, whatever the roster's order."""
    index, count = shard
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % count == index - 1


def submissions(folder: Path) -> list[collect.Result]:
    """The collect report's rows."""
    path = folder / f"{collect.REPORT}.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [collect.Result(**row) for row in rows]
    except (OSError, ValueError, TypeError) as exc:
        raise CheckError(f"{path}: {exc} (run `python -m staff collect` first)") from None


def save(out: Path, res: Submission) -> None:
    """OUT/results/ID.json, atomically: a result is there whole or not at all."""
    path = out / "results" / f"{res.id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(res), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def previous(out: Path, student: str) -> Submission | None:
    """The saved result of an earlier run, if any."""
    try:
        return Submission(**json.loads((out / "results" / f"{student}.json").read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def build_parser() -> argparse.ArgumentParser:
    """check's command line."""
    parser = batch.parser("python -m staff check", __doc__ or "")
    parser.add_argument("submissions", type=Path, help="collect's folder (collect-report.json)")
    parser.add_argument(
        "--rubric", type=Path, help="the rubric YAML (required unless writing a manifest)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("checks"),
        help="folder for results, logs, report (default: ./checks)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="the shared package cache, warmed once: DIR/uv, DIR/pip (wheels), DIR/conda "
        "(default: none: an environment needs the network, which the sandbox has not)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="submissions at once (default: min(4, CPUs))",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds per student (default: the rubric's, else 900)"
    )
    parser.add_argument(
        "--memory", type=int, default=4096, help="MB of address space per process (default: 4096)"
    )
    parser.add_argument(
        "--processes", type=int, default=256, help="processes per student (default: 256)"
    )
    parser.add_argument(
        "--max-file-size", type=int, default=1024, help="MB per file written (default: 1024)"
    )
    parser.add_argument("--shard", help="I/N: check the I-th of N stable shares of the class")
    parser.add_argument(
        "--force", action="store_true", help="check again what an earlier run checked"
    )
    parser.add_argument(
        "--keep-boxes",
        action="store_true",
        help="keep each checked copy and its environment in OUT/boxes (default: deleted, logs kept)",
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="run student code WITHOUT a sandbox (only code you trust)",
    )
    parser.add_argument(
        "--bwrap", default="bwrap", help="the bubblewrap program (default: bwrap on PATH)"
    )
    parser.add_argument(
        "--write-k8s",
        type=Path,
        metavar="FILE",
        help="write a Kubernetes Indexed Job for --shards N and exit",
    )
    parser.add_argument(
        "--write-github",
        type=Path,
        metavar="FILE",
        help="write a GitHub Actions matrix workflow for --shards N and exit",
    )
    parser.add_argument(
        "--shards", type=int, default=10, help="N for --write-k8s/--write-github (default: 10)"
    )
    parser.add_argument(
        "--image", default="python:3.12-slim", help="container image for --write-k8s"
    )
    return parser  # fmt: skip


def shard_command(args: argparse.Namespace, index: str, out: str) -> str:
    """The check command one shard runs (the manifest's and the workflow's)."""
    rubric = args.rubric or Path("rubric.yml")
    return (
        f"python -m staff check {args.submissions} --rubric {rubric} --cache {args.cache or 'staff-cache'} "
        f"--out {out} --shard {index}/{args.shards} --jobs {args.jobs}"
    )


def write_manifests(args: argparse.Namespace) -> None:
    """The Kubernetes Indexed Job and/or the GitHub Actions matrix for --shards N."""
    n = args.shards
    for path in (args.write_k8s, args.write_github):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)  # e.g. .github/workflows/
    if args.write_k8s:
        cmd = shard_command(
            args, "$((JOB_COMPLETION_INDEX + 1))", "checks/shard-$((JOB_COMPLETION_INDEX + 1))"
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "staff-check"},
            "spec": {
                "completionMode": "Indexed",
                "completions": n,
                "parallelism": n,
                "backoffLimit": n,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "check",
                        "image": args.image,
                        "workingDir": "/data",
                        "command": ["sh", "-c", cmd],
                        # bubblewrap makes namespaces: the pod must be allowed to
                        "securityContext": {"privileged": True},
                        "resources": {"requests": {"cpu": str(args.jobs), "memory": f"{args.jobs * 2}Gi"}},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "staff-data"}}],
                }},
            },
        }  # fmt: skip
        args.write_k8s.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    if args.write_github:
        flow = {
            "name": "check submissions",
            "on": {"workflow_dispatch": {}},
            "permissions": {"contents": "read"},
            "jobs": {
                "check": {
                    "runs-on": "ubuntu-latest",
                    "strategy": {"fail-fast": False, "matrix": {"shard": list(range(1, n + 1))}},
                    "steps": [
                        {"uses": "actions/checkout@v7"},
                        {"run": "sudo apt-get install -y bubblewrap && pip install copier pyyaml packaging uv"},
                        {"run": shard_command(args, "${{ matrix.shard }}", "checks/shard-${{ matrix.shard }}")},
                        {"uses": "actions/upload-artifact@v6", "if": "always()",
                         "with": {"name": "checks-${{ matrix.shard }}", "path": "checks/"}},
                    ],
                },
                "report": {
                    "needs": "check",
                    "if": "always()",
                    "runs-on": "ubuntu-latest",
                    "steps": [
                        {"uses": "actions/checkout@v7"},
                        {"uses": "actions/download-artifact@v7", "with": {"path": "checks/"}},
                        {"run": "pip install pyyaml && python -m staff report checks/*/shard-* --out report"},
                        {"uses": "actions/upload-artifact@v6", "with": {"name": "report", "path": "report/"}},
                    ],
                },
            },
        }  # fmt: skip
        args.write_github.write_text(yaml.safe_dump(flow, sort_keys=False), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """Check the share of the class; write the report; the exit status."""
    if args.write_k8s or args.write_github:
        if args.shards < 1:
            raise CheckError("--shards must be 1 or more")
        write_manifests(args)
        print(
            f"Wrote {', '.join(str(p) for p in (args.write_k8s, args.write_github) if p)} for {args.shards} shards"
        )
        return 0
    if not args.rubric:
        raise CheckError("--rubric is required")
    rubric = load_rubric(args.rubric)
    shard = parse_shard(args.shard)
    if args.jobs < 1:
        raise CheckError("--jobs must be 1 or more")
    if args.cache and not args.cache.is_dir():
        raise CheckError(
            f"--cache {args.cache} is not a folder (warm it: UV_CACHE_DIR={args.cache}/uv make env, in a provisioned project)"
        )
    if args.cache and not any((args.cache / tool).is_dir() for tool in CACHE_LINKED):
        raise CheckError(
            f"--cache {args.cache} has none of {', '.join(f'{t}/' for t in CACHE_LINKED)}: one "
            f"folder per tool (a uv cache goes in {args.cache / 'uv'}; see docs/course-staff.md 8.4)"
        )
    if not args.unsafe:
        try:
            sandbox.probe(shutil.which(args.bwrap) or args.bwrap)
        except sandbox.SandboxUnavailable as exc:
            raise CheckError(
                f"no sandbox: {exc}. Student code would run as you, with your files and network; "
                "check refuses. Install it, or pass --unsafe for code you trust."
            ) from None
    subs = [s for s in submissions(args.submissions.resolve()) if in_shard(s.id, shard)]
    out = args.out.resolve()
    (out / "results").mkdir(parents=True, exist_ok=True)
    cache = args.cache.resolve() if args.cache else None
    hidden = sorted({args.submissions.resolve(), out, Path.home().resolve()})
    tools = sandbox.Sandbox(
        None if args.unsafe else shutil.which(args.bwrap),
        hidden=hidden,
        readable=sandbox.tool_folders(SANDBOX_TOOLS),
        limits=sandbox.Limits(args.processes, args.max_file_size, args.memory),
        unsafe=args.unsafe,
    )
    timeout = args.timeout or rubric.timeout or 900.0
    todo, results = [], []
    for sub in subs:
        key = hashlib.sha256(
            f"{sub.commit}\n{rubric.digest}\n{CHECKER_VERSION}".encode()
        ).hexdigest()
        old = previous(out, sub.id)
        if sub.status != "collected":
            res = Submission(sub.id, "no-submission", detail=sub.detail, key=key)
            save(out, res)
            results.append(res)
        elif old and old.key == key and old.status == "checked" and not args.force:
            results.append(old)
        else:
            todo.append((sub, key))
    poetry = [sub.id for sub, _ in todo if manager_of(Path(sub.path)) in POETRY]
    if poetry:
        print(f"Warning: {', '.join(poetry[:10])}: {POETRY_OFFLINE}", file=sys.stderr)
    if cache and todo:
        print("Byte-compiling the shared cache's packages (once per Python)", file=sys.stderr)
        precompile(cache, [sub for sub, _ in todo])
    skipped = len(subs) - len(todo)
    print(f"{len(subs)} submissions in shard {shard[0]}/{shard[1]}: {len(todo)} to check, "
          f"{skipped} unchanged or without a submission", file=sys.stderr)  # fmt: skip
    progress = batch.Progress(len(todo), bad_label="errors")
    stop = threading.Event()
    # Sandbox users differ between the shards too (several may run on one machine).
    slots = [(shard[0] - 1) * args.jobs + n for n in range(args.jobs)]
    interrupted = False

    def work(sub: collect.Result, key: str, slot: int) -> Submission:
        try:
            res = check_one(sub, rubric, out, tools, slot, timeout, cache, stop)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # staff-side problem with this one: the others go on
            res = Submission(sub.id, "error", sub.commit, detail=f"{type(exc).__name__}: {exc}")
        finally:
            if not args.keep_boxes:  # an environment per student: gigabytes for a class
                shutil.rmtree(out / "boxes" / sub.id, ignore_errors=True)
        res.key = key
        return res

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old_handler = signal.signal(signal.SIGTERM, on_term)
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    running: dict[Future[Submission], int] = {}
    queue = list(todo)
    try:
        while queue or running:
            while queue and slots:
                sub, key = queue.pop(0)
                slot = slots.pop(0)
                running[pool.submit(work, sub, key, slot)] = slot
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                slots.append(running.pop(future))
                try:
                    res = future.result()
                except KeyboardInterrupt:
                    continue
                save(out, res)
                results.append(res)
                progress.report(
                    res.id, f"{res.status} {res.score:.0f}%", res.seconds, bad=res.status == "error"
                )
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        tools.stop_all()
        print(batch.INTERRUPTED.replace("projects", "submissions"), file=sys.stderr)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, old_handler)
        progress.close()
    paths = report.write(out, [out])
    print(report.summary_text(report.load([out])))
    print(f"Report: {paths['html']} (and .json, .csv)")
    bad = interrupted or any(r.status == "error" for r in results)
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    """check's entry point; the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except batch.BatchError as exc:
        print(f"check: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
