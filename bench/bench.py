#!/usr/bin/env python3
"""Benchmarks: copier-mlops vs cookiecutter-data-science (ccds) on this machine, in one run.

    .venv/bin/python -m bench.bench [--quick] [--ccds-template PATH] [--no-docker] [--no-tracking] [--out FILE]
    .venv/bin/python -m bench.bench --only tracking   # what MLflow costs: its own part of the file

Prints a markdown table and writes it to docs/benchmarks.md, with the environment rows' steps
drawn beside it (docs/benchmarks-steps.png). Each figure is the median of several runs with min
and max beside it; every ratio compares two figures measured in this same run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import resource
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# The dev helpers bench and tests share (the package index, buildah); bench never imports tests/.
from devsupport import exit_on_sigterm, manager_choices, pip_index_url, read_result
from imagebuild import Buildah, missing_tools, rootfs_tarball, storage_driver

ROOT = Path(__file__).resolve().parents[1]

BIN = Path(sys.executable).parent  # the dev venv: copier, uv, poetry
CCDS_URL = "https://github.com/drivendataorg/cookiecutter-data-science"
CCDS_VERSION = "2.3.0"
STACK = ["numpy", "pandas", "scikit-learn", "matplotlib"]
STACK_IMPORT = "import numpy, pandas, sklearn, matplotlib"
PY = "3.11"  # the Python of Debian bookworm's python3: the only slim base image we can build
# copier.yml's managers, but conda and its hybrids (conda-poetry, conda-uv): no conda here.
MANAGERS = tuple(m for m in manager_choices() if not m.startswith("conda"))
CCDS_MANAGER = {"uv": "uv", "poetry": "poetry", "venv": "virtualenv"}
CCDS_DEP_FILE = {"uv": "pyproject.toml", "poetry": "pyproject.toml", "venv": "requirements.txt"}
# Both sides with the same stack, pytest and ruff, and no extras (no git, CI, notebooks, docs).
OUR_ENV_ANSWERS = {"ml_framework": "sklearn", "example": "none", "python_version": PY,
                   "ci": "none", "jupyter_kernel": "false", "git_init": "false"}  # fmt: skip
CCDS_ENV_ANSWERS = {"project_name": "bench", "python_version_number": PY, "pydata_packages": "none",
                    "testing_framework": "pytest", "linting_and_formatting": "ruff", "docs": "none",
                    "include_code_scaffold": "No"}  # fmt: skip
# The tracking section: uv, scikit-learn, the MNIST starter, nothing else that adds packages.
TRACKING_ANSWERS = {**OUR_ENV_ANSWERS, "env_manager": "uv", "example": "mnist", "serving": "none",
                    "data_versioning": "none"}  # fmt: skip
TRACKERS = ("none", "mlflow")
TRACKING_START, TRACKING_END = "<!-- tracking-bench:start -->", "<!-- tracking-bench:end -->"
# The steps of an environment row, the same on both sides (a step a side does not take is 0 s).
STEPS = ("render", "tool start", "install", "lock", "sanity import", "pip check", "kernel", "git")
# The set-up's steps (tools/envtool-result.json) in STEPS' terms; its own time goes to tool start.
HOOK_STEP = {"find the tool": "tool start", "create the environment": "tool start",
             "install the project and its dependencies": "install", "write the lock file": "lock",
             "sanity import": "sanity import", "register the Jupyter kernel": "kernel"}  # fmt: skip
Cmd = Sequence[str | Path]


@dataclass
class Row:
    """One measurement: its samples, label and unit, and the row it is compared with."""

    key: str
    label: str
    samples: list[float] = field(default_factory=list)
    versus: str = ""  # key of the row this one is compared with
    unit: str = "s"

    @property
    def median(self) -> float:
        """The row's figure: the median of its samples."""
        return statistics.median(self.samples)


@dataclass
class Bench:
    """One benchmark run: its scratch folder, whether ccds is measured, and the rows so far."""

    work: Path
    ccds_template: str | None
    with_ccds: bool = True  # False where ccds's template cannot be had (GitHub unreachable)
    index: str = field(default_factory=pip_index_url)
    rows: list[Row] = field(default_factory=list)
    step_times: dict[str, list[str]] = field(default_factory=dict)
    # (manager, side) -> one {step: seconds} per warm run, each adding up to that run's time
    steps: dict[tuple[str, str], list[dict[str, float]]] = field(default_factory=dict)
    # manager -> (requirements, import statement) of the project copier-mlops renders for it
    packages: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    mlflow_version: str = ""  # in the tracking section's environment

    # ------------------------------------------------------------------------ plumbing
    def scratch(self) -> Path:
        """A new empty folder under the run's work folder."""
        return Path(tempfile.mkdtemp(dir=self.work))

    def env(self, cache: Path | None = None) -> dict[str, str]:
        """Tool environment; with `cache`, every package cache (and poetry's venvs) lives there."""
        # Without PYTHONDONTWRITEBYTECODE (set on some CI machines, rare on users' ones): every
        # first import then writes its bytecode, as it does for a user.
        drop = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env |= {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "UV_PYTHON_DOWNLOADS": "never"}
        if cache is not None:
            env |= {"UV_CACHE_DIR": f"{cache}/uv", "PIP_CACHE_DIR": f"{cache}/pip",
                    "POETRY_CACHE_DIR": f"{cache}/poetry"}  # fmt: skip
        return env

    def add(
        self, key: str, label: str, samples: list[float], versus: str = "", unit: str = "s"
    ) -> None:
        """Record a row of samples and print its median."""
        self.rows.append(Row(key, label, samples, versus, unit))
        row = self.rows[-1]
        print(f"  {label}: median {fmt(row.median, unit)} ({len(samples)} runs)", flush=True)

    def row(self, key: str) -> Row:
        """The row with `key` (StopIteration when there is none)."""
        return next(r for r in self.rows if r.key == key)

    # ------------------------------------------------------------------------ subjects
    def setup(self) -> None:
        """Our template as a plain folder (no git clone in the timings); ccds from PyPI + its template."""
        self.ours = self.work / "copier-mlops"
        for name in ("copier.yml", "template", "extensions"):
            src, dst = ROOT / name, self.ours / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        # copier's own floor: start-up and one render, next to which our template's share shows.
        self.bare_template = self.work / "bare-template"
        (self.bare_template / "template").mkdir(parents=True)
        (self.bare_template / "copier.yml").write_text(
            "_subdirectory: template\nproject_name:\n  type: str\n  default: bench\n"
        )
        (self.bare_template / "template" / "README.md.jinja").write_text("# {{ project_name }}\n")
        if self.with_ccds:
            self.setup_ccds()

    def setup_ccds(self) -> None:
        """ccds from PyPI in a venv and its release template, both kept beside the work folder."""
        venv = self.work.parent / "ccds-venv"  # reused across runs
        if not (venv / "bin" / "ccds").exists():
            run([sys.executable, "-m", "venv", venv])
            run(
                [
                    venv / "bin/python",
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    f"cookiecutter-data-science=={CCDS_VERSION}",
                ]
            )
        self.ccds = venv / "bin" / "ccds"
        self.ccds_tpl = self.work.parent / f"ccds-template-{CCDS_VERSION}"
        if not self.ccds_tpl.exists():
            if self.ccds_template:  # a (bare) git repository of ccds: export the release tag
                archive = subprocess.run(["git", "-C", self.ccds_template, "archive", f"v{CCDS_VERSION}"],
                                         capture_output=True, check=True).stdout  # fmt: skip
                self.ccds_tpl.mkdir()
                subprocess.run(["tar", "-x", "-C", str(self.ccds_tpl)], input=archive, check=True)
            else:
                run(
                    [
                        "git",
                        "clone",
                        "-q",
                        "--depth=1",
                        "-b",
                        f"v{CCDS_VERSION}",
                        CCDS_URL,
                        self.ccds_tpl,
                    ]
                )

    def copier(
        self, dst: Path, env: dict[str, str], answers: dict[str, str], template: Path | None = None
    ) -> str:
        """`copier copy --trust --defaults` of our template (or `template`) to `dst`; its output."""
        data = [x for k, v in answers.items() for x in ("-d", f"{k}={v}")]
        src = template or self.ours
        return run(
            [BIN / "copier", "copy", "--trust", "--defaults", "--quiet", *data, src, dst], env=env
        )

    def cookiecutter(self, out: Path, env: dict[str, str], answers: dict[str, str]) -> Path:
        """Render ccds's template into `out` with `answers`; the project's folder."""
        run([self.ccds, "--no-input", "-o", out, self.ccds_tpl, *(f"{k}={v}" for k, v in answers.items())],
            env=env)  # fmt: skip
        return out / answers.get("project_name", "project_name")

    def our_answers(self, manager: str, **extra: str) -> dict[str, str]:
        """Our answers for `manager` and the bench's stack; Poetry gets the index as its source."""
        answers = {"env_manager": manager, **OUR_ENV_ANSWERS, **extra}
        if manager == "poetry":  # poetry needs the index's simple API as its source here
            answers["package_index_url"] = self.index
        return answers

    # ------------------------------------------------------------------------ measurements
    def ours_env(
        self,
        manager: str,
        cache: Path,
        keep: Path | None = None,
        answers: dict[str, str] | None = None,
        label: str = "",
        measured: dict[str, list[float]] | None = None,
    ) -> float:
        """Generate + create env + sanity import of the stack, all by `copier copy --trust`.
        With `keep` (the first, cold run), the project is made there and kept: the floor's.
        `measured` collects the environment's size (MB) and the hook's sanity import (s)."""
        base = self.scratch()
        project = keep or base / "p"
        start, began = time.perf_counter(), time.time()
        out = self.copier(project, self.env(cache), answers or self.our_answers(manager))
        took, ended = time.perf_counter() - start, time.time()
        result = read_result(project)
        if result.get("status") != "ok":
            raise RuntimeError(f"the set-up did not finish: {result}\n{out[-3000:]}")
        if not keep and not label:  # a warm environment row: its steps
            self.steps.setdefault((manager, "ours"), []).append(hook_steps(result, began, ended))
        steps = ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in result["steps"])
        warmth = "cold" if keep else "warm"  # the run that keeps the project is the first one
        self.step_times.setdefault(f"{label or manager} {warmth}", []).append(steps)
        if measured is not None:
            measured.setdefault("size", []).append(tree_mb(project / ".venv"))
            sanity = [s["seconds"] for s in result["steps"] if s["name"] == "sanity import"]
            measured.setdefault("sanity", []).extend(sanity)
        shutil.rmtree(base, ignore_errors=True)
        return took

    def ccds_env(
        self,
        manager: str,
        cache: Path,
        packages: Sequence[str] = STACK,
        imports: str = STACK_IMPORT,
        sizes: list[float] | None = None,
        record: bool = False,
    ) -> float:
        """ccds: render, put our stack (or `packages`) in its dependency file, its Makefile
        targets, import (`imports`); `sizes` collects the environment's size (MB); with `record`,
        the time of each step goes to self.steps."""
        base = self.scratch()
        env = self.env(cache)
        steps = dict.fromkeys(STEPS, 0.0)
        clock = time.perf_counter()

        def step(name: str) -> None:
            """Add the time since the last step to `name`'s."""
            nonlocal clock
            now = time.perf_counter()
            steps[name] += now - clock
            clock = now

        start = clock
        answers = {**CCDS_ENV_ANSWERS, "environment_manager": CCDS_MANAGER[manager],
                   "dependency_file": CCDS_DEP_FILE[manager]}  # fmt: skip
        project = self.cookiecutter(base, env, answers)
        add_stack(project, CCDS_DEP_FILE[manager], self.index, packages)
        python = project / ".venv/bin/python"
        step("render")
        if manager == "venv":
            # create_environment is virtualenvwrapper's mkvirtualenv (not installed here): the same
            # with venv, then ccds's own `make requirements` with the new env's python.
            run([f"python{PY}", "-m", "venv", ".venv"], project, env)
            step("tool start")
            run(["make", "requirements", f"PYTHON_INTERPRETER={python}"], project, env)
        else:
            run(["make", "create_environment"], project, env)
            step("tool start")
            run(["make", "requirements"], project, env)  # uv sync: its lock file too
            if manager == "poetry":  # poetry keeps its envs in its cache folder
                python = Path(run([BIN / "poetry", "env", "info", "-e"], project, env).strip())
        step("install")
        run([python, "-c", imports], project, env)
        step("sanity import")
        took = time.perf_counter() - start
        if record:
            self.steps.setdefault((manager, "ccds"), []).append(steps)
        if sizes is not None:
            sizes.append(tree_mb(python.parent.parent))
        if manager == "poetry":
            run([BIN / "poetry", "env", "remove", "--all"], project, env)
        shutil.rmtree(base, ignore_errors=True)
        return took

    def floor(self, manager: str, project: Path, cache: Path) -> tuple[float, float]:
        """The manager's own install alone on a ready project (lock file there), warm cache;
        returns (install, install + first import of the stack)."""
        commands: dict[str, Cmd] = {
            "uv": [BIN / "uv", "sync"],
            "poetry": [BIN / "poetry", "install"],
            "venv": ["sh", "-c", f"python{PY} -m venv .venv && .venv/bin/python -m pip install -q --upgrade pip "
                     "&& .venv/bin/python -m pip install -q --no-compile -r requirements-dev.txt"],
        }  # fmt: skip
        cmd, env = commands[manager], self.env(cache)
        shutil.rmtree(project / ".venv")
        start = time.perf_counter()
        run(cmd, project, env)
        installed = time.perf_counter() - start
        run([project / ".venv/bin/python", "-c", self.packages[manager][1]], project, env)
        return installed, time.perf_counter() - start

    def render(self, runs: int) -> None:
        """Time rendering alone (no env, no git): ours, ccds's, and a bare copier template."""
        print("render", flush=True)
        env = self.env()
        # Default answers on both sides (ours: uv, sklearn, MNIST starter, CI; ccds: code scaffold,
        # mkdocs), no environment, no git.
        quiet = {"create_env": "false", "git_init": "false"}

        def ours() -> float:
            """Seconds for one render of our template."""
            return timed(lambda: self.copier(self.scratch() / "p", env, quiet))

        def theirs() -> float:
            """Seconds for one render of ccds's template."""
            return timed(lambda: self.cookiecutter(self.scratch(), env, {"project_name": "bench"}))

        def bare() -> float:
            """Seconds for one render of the bare one-question template."""
            return timed(lambda: self.copier(self.scratch() / "p", env, {}, self.bare_template))

        ours(), bare()  # warm the file cache and bytecode of each
        if self.with_ccds:
            theirs()
        self.add("render.copier-floor", "copier itself: a one-file, one-question template",
                 [bare() for _ in range(runs)])  # fmt: skip
        self.add("render.ours", "copier-mlops: `copier copy --defaults` (hook off)", [ours() for _ in range(runs)],
                 versus="render.ccds" if self.with_ccds else "")  # fmt: skip
        if self.with_ccds:
            self.add(
                "render.ccds", "ccds: `ccds --no-input` (defaults)", [theirs() for _ in range(runs)]
            )

    def environments(self, managers: Sequence[str], runs: dict[str, int]) -> None:
        """Per manager and side: one run with empty package caches (cold), which fills them for
        the warm runs after it; the user's own caches are never read."""
        for m in managers:
            print(f"environment: {m}", flush=True)
            # ccds gets exactly the runtime requirements of the project ours renders (the stack,
            # Hydra and its configuration packages), and imports the same modules.
            declared = self.declared(self.our_answers(m))
            self.packages[m] = (
                [r for r, _ in declared],
                "import " + ", ".join(i for _, i in declared),
            )

            ccds = functools.partial(self.ccds_env, m, packages=self.packages[m][0],
                                     imports=self.packages[m][1])  # fmt: skip

            ours_cache, ccds_cache, project = (self.scratch() for _ in range(3))
            ours_cold = self.ours_env(m, ours_cache, keep=project / "p")  # the floor's project
            ccds_cold = ccds(ccds_cache) if self.with_ccds else 0.0
            n = runs[m]
            floors = [self.floor(m, project / "p", ours_cache) for _ in range(n)]
            self.add(f"{m}.floor", f"{m}: floor, `{FLOOR_LABEL[m]}` on a ready project (warm)",
                     [f[0] for f in floors])  # fmt: skip
            self.add(f"{m}.floor+import", f"{m}: floor + first import of the same modules (warm)",
                     [f[1] for f in floors])  # fmt: skip
            self.add(f"{m}.ours", f"{m}: copier-mlops, `copier copy --trust` (warm)",
                     [self.ours_env(m, ours_cache) for _ in range(n)],
                     versus=f"{m}.ccds" if self.with_ccds else "")  # fmt: skip
            if self.with_ccds:
                self.add(f"{m}.ccds", f"{m}: ccds given the same packages: render + create_environment "
                         "+ requirements + import (warm)", [ccds(ccds_cache, record=True) for _ in range(n)])  # fmt: skip
            self.add(f"{m}.ours.cold", f"{m}: copier-mlops (cold cache)", [ours_cold],
                     versus=f"{m}.ccds.cold" if self.with_ccds else "")  # fmt: skip
            if self.with_ccds:
                self.add(f"{m}.ccds.cold", f"{m}: ccds (cold cache)", [ccds_cold])
            shutil.rmtree(project, ignore_errors=True)

    def declared(self, answers: dict[str, str]) -> list[tuple[str, str]]:
        """(requirement, import name) of each runtime dependency of a project rendered with
        `answers`, as the set-up's sanity import reads them (tools/envtool.json)."""
        project = self.scratch() / "p"
        self.copier(project, self.env(), {**answers, "create_env": "false"})
        config = json.loads((project / "tools" / "envtool.json").read_text(encoding="utf-8"))
        shutil.rmtree(project.parent, ignore_errors=True)
        return [(d["req"], d["import"]) for d in config["dependencies"]]

    def tracking(self, runs: int, repeats: int, with_ccds: bool = True) -> None:
        """uv, scikit-learn and the MNIST starter, with experiment_tracking=none and =mlflow:
        `copier copy --trust` (cold: the first run on an empty cache; then `runs` warm runs), the
        environment's size and the hook's sanity import; ccds given the same packages (unless
        not `with_ccds`); the import of the stack with and without mlflow (`repeats` times each,
        bytecode compiled); the student's loop, `make train DATASET=digits` in each project
        (student_loop, `repeats` times)."""
        sides = ("ours", "ccds") if with_ccds and self.with_ccds else ("ours",)
        print("tracking: uv, MNIST sklearn, experiment_tracking none vs mlflow", flush=True)
        answers = {t: {**TRACKING_ANSWERS, "experiment_tracking": t} for t in TRACKERS}
        declared = {t: self.declared(answers[t]) for t in TRACKERS}
        imports = {t: "import " + ", ".join(i for _, i in declared[t]) for t in TRACKERS}
        caches = {(side, t): self.scratch() for side in sides for t in TRACKERS}
        measured: dict[str, dict[str, list[float]]] = {t: {} for t in TRACKERS}
        ccds_sizes: dict[str, list[float]] = {t: [] for t in TRACKERS}
        # The cold projects: the student's loop's, and (mlflow's) the import timings' environment
        projects = {t: self.scratch() / "p" for t in TRACKERS}
        kept = projects["mlflow"]

        def ours(t: str, keep: Path | None = None) -> float:
            """Seconds for our project with tracking `t` (kept in `keep`); fills measured[t]."""
            return self.ours_env("uv", caches["ours", t], keep=keep, answers=answers[t],
                                 label=f"uv, MNIST sklearn, tracking {t},", measured=measured[t])  # fmt: skip

        def ccds(t: str) -> float:
            """Seconds for ccds given tracking `t`'s packages; sizes into ccds_sizes[t]."""
            packages = [r for r, _ in declared[t]]
            return self.ccds_env("uv", caches["ccds", t], packages, imports[t], ccds_sizes[t])

        cold = {("ours", t): ours(t, projects[t]) for t in TRACKERS}
        if "ccds" in sides:
            cold |= {("ccds", t): ccds(t) for t in TRACKERS}
        for t in TRACKERS:  # sizes and sanity imports: of the warm runs (as the cold ones')
            measured[t] = {k: [] for k in measured[t]}
            ccds_sizes[t] = []
        warm: dict[tuple[str, str], list[float]] = {key: [] for key in cold}
        for _ in range(runs):  # interleaved, so a change in the machine's load hits both
            for side, t in cold:
                warm[side, t].append(ours(t) if side == "ours" else ccds(t))
        for side in sides:
            who = (
                "copier-mlops `copier copy --trust`"
                if side == "ours"
                else "ccds given the same packages: render + create_environment + requirements + import"
            )
            for t in TRACKERS:
                vs = f"tracking.{side}.none" if t == "mlflow" else ""
                self.add(f"tracking.{side}.{t}", f"uv, MNIST sklearn, tracking {t}: {who} (warm)",
                         warm[side, t], vs)  # fmt: skip
            for t in TRACKERS:
                vs = f"tracking.{side}.none.cold" if t == "mlflow" else ""
                self.add(f"tracking.{side}.{t}.cold", f"uv, tracking {t}: {side} (cold cache)",
                         [cold[side, t]], vs)  # fmt: skip
            for t in TRACKERS:
                sizes = measured[t]["size"] if side == "ours" else ccds_sizes[t]
                vs = f"tracking.{side}.none.size" if t == "mlflow" else ""
                self.add(f"tracking.{side}.{t}.size", f"environment size (.venv), tracking {t}: {side}",
                         sizes, vs, "MB")  # fmt: skip
        for t in TRACKERS:
            vs = "tracking.ours.none.sanity" if t == "mlflow" else ""
            self.add(f"tracking.ours.{t}.sanity", f"the hook's sanity import step, tracking {t} (warm)",
                     measured[t]["sanity"], vs)  # fmt: skip
        python, env = kept / ".venv" / "bin" / "python", self.env()
        for code in ("pass", imports["none"], imports["mlflow"], "import mlflow"):
            run([python, "-c", code], kept, env)  # bytecode written, files in the OS cache

        def import_time(code: str) -> list[float]:
            """`repeats` timings of `python -c code` in the kept environment."""
            return [timed(lambda: run([python, "-c", code], kept, env)) for _ in range(repeats)]

        self.add("tracking.import.python", "`python -c pass` in that environment (the floor)",
                 import_time("pass"))  # fmt: skip
        self.add("tracking.import.stack", f"`python -c '{imports['none']}'`: the sanity import "
                 "without mlflow", import_time(imports["none"]))  # fmt: skip
        self.add("tracking.import.stack+mlflow", "the same with mlflow: "
                 f"`python -c '{imports['mlflow']}'`", import_time(imports["mlflow"]),
                 "tracking.import.stack")  # fmt: skip
        self.add(
            "tracking.import.mlflow", "`python -c 'import mlflow'`", import_time("import mlflow")
        )
        self.mlflow_version = run(
            [python, "-c", "import mlflow; print(mlflow.__version__)"], kept, env
        ).strip()
        self.student_loop(projects, repeats)
        for project in projects.values():
            shutil.rmtree(project.parent, ignore_errors=True)

    def student_loop(self, projects: dict[str, Path], runs: int) -> None:
        """`make train DATASET=digits` in the project of each tracker, warm (a first run writes
        the bytecode), `runs` times, interleaved: wall clock, and CPU time (user + sys of every
        process it starts: less sensitive to other work on the machine)."""
        train, env = ["make", "train", "DATASET=digits"], self.env()
        for project in projects.values():
            run(train, project, env)
        wall: dict[str, list[float]] = {t: [] for t in projects}
        cpu: dict[str, list[float]] = {t: [] for t in projects}
        for _ in range(runs):
            for t, project in projects.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall[t].append(timed(functools.partial(run, train, project, env)))
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[t].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        for t in projects:
            vs = "tracking.train.none" if t == "mlflow" else ""
            self.add(f"tracking.train.{t}", f"the student's loop: `make train DATASET=digits`, "
                     f"tracking {t} (warm)", wall[t], vs)  # fmt: skip
        for t in projects:
            vs = "tracking.train.none.cpu" if t == "mlflow" else ""
            self.add(f"tracking.train.{t}.cpu", f"the same, CPU time (user + sys), tracking {t}",
                     cpu[t], vs)  # fmt: skip

    def docker(self) -> None:
        """Build a naive image and each manager's: size, first build, rebuild after an edit."""
        if why := missing_tools():
            print(f"docker section skipped: {why}")
            return
        print("docker (buildah)", flush=True)
        # A private, empty layer cache (the first build is cold); overlay where the kernel allows,
        # like Docker's overlay2 (vfs copies the whole rootfs per layer: it would time its copying).
        buildah = Buildah(self.scratch(), storage_driver())
        buildah.import_rootfs(rootfs_tarball(), f"python:{PY}-slim")
        buildah.import_uv(uv_version(), f"ghcr.io/astral-sh/uv:{uv_version()}", self.scratch())
        naive = self.scratch() / "p"
        self.copier(
            naive, self.env(), {**OUR_ENV_ANSWERS, "env_manager": "venv", "create_env": "false"}
        )
        (naive / "Dockerfile").write_text(NAIVE_DOCKERFILE)
        (naive / ".dockerignore").unlink()
        contexts = {"naive": naive}
        for m in MANAGERS:
            project = self.scratch() / "p"
            self.copier(project, self.env(), self.our_answers(m, create_env="false"))
            locks: dict[str, Cmd] = {"uv": [BIN / "uv", "lock"], "poetry": [BIN / "poetry", "lock"]}
            lock = locks.get(m)
            if lock:
                run(lock, project, self.env())
            contexts[m] = project
        self.add("docker.base", f"image size, the base image python:{PY}-slim (the floor)",
                 [image_size(buildah, f"python:{PY}-slim")], unit="MB")  # fmt: skip
        try:
            for name, context in contexts.items():
                label = (
                    "naive: `FROM python:slim` + `pip install` + `COPY .`"
                    if name == "naive"
                    else f"copier-mlops {name}"
                )
                first = buildah.build(context, f"bench-{name}").seconds
                init = next(context.glob("src/*/__init__.py"))
                init.write_text(init.read_text() + "# a source edit\n")
                second = buildah.build(context, f"bench-{name}").seconds
                size = image_size(buildah, f"bench-{name}")
                vs = "" if name == "naive" else "docker.naive"
                self.add(
                    f"docker.{name}.size", f"image size, {label}", [size], vs and f"{vs}.size", "MB"
                )
                self.add(
                    f"docker.{name}.first", f"first build, {label}", [first], vs and f"{vs}.first"
                )
                self.add(f"docker.{name}.second", f"second build after a source edit, {label}", [second],
                         vs and f"{vs}.second")  # fmt: skip
        finally:
            buildah("rmi", "--all", "--force")  # unmounts the overlay layers before they go
            shutil.rmtree(buildah.root, ignore_errors=True)


FLOOR_LABEL = {"uv": "uv sync", "poetry": "poetry install",
               "venv": f"python{PY} -m venv .venv && pip install --upgrade pip && pip install --no-compile -r requirements-dev.txt"}  # fmt: skip

NAIVE_DOCKERFILE = f"""\
FROM python:{PY}-slim
# The local stand-in for python:slim is Debian's own Python, which refuses system-wide pip
# installs (PEP 668); the real python:slim image does not, so this line only undoes that.
ENV PIP_BREAK_SYSTEM_PACKAGES=1
RUN pip install numpy pandas scikit-learn matplotlib
COPY . /app
WORKDIR /app
RUN pip install .
CMD ["python", "-c", "{STACK_IMPORT}"]
"""


def add_stack(
    project: Path, dependency_file: str, index: str, packages: Sequence[str] = STACK
) -> None:
    """Give the ccds project exactly our stack (its `basic` set would add jupyterlab and more)."""
    path = project / dependency_file
    if dependency_file == "requirements.txt":
        path.write_text(path.read_text() + "".join(f"{p}\n" for p in packages))
        return
    deps = "".join(f'    "{p}",\n' for p in packages)
    text = re.sub(r"dependencies = \[\n?", "dependencies = [\n" + deps, path.read_text(), count=1)
    # Poetry needs the index's simple API as its primary source here (the same one ours uses).
    text += f'\n[[tool.poetry.source]]\nname = "index"\nurl = "{index}"\npriority = "primary"\n'
    path.write_text(text)


def hook_steps(result: dict[str, Any], began: float, ended: float) -> dict[str, float]:
    """One `copier copy --trust` run in STEPS: render is copier's time until the tool started,
    git copier's time after it ended (the git-init task, then copier's own end), the rest the
    set-up's steps (tools/envtool-result.json: `pip check` is a part of its sanity import)."""
    steps = dict.fromkeys(STEPS, 0.0)
    steps["render"] = result["started_at"] - began
    steps["git"] = ended - result["finished_at"]
    for s in result["steps"]:
        parts = s.get("parts", {})
        steps[HOOK_STEP.get(s["name"], "tool start")] += s["seconds"] - sum(parts.values())
        for name, seconds in parts.items():
            steps[name] += seconds
    # The set-up's own time between and after its steps (its summary, the lock file's commit).
    steps["tool start"] += (
        result["finished_at"] - result["started_at"] - sum(s["seconds"] for s in result["steps"])
    )
    return steps


def step_rows(bench: Bench) -> list[tuple[str, str, dict[str, float], float]]:
    """(manager, side, median seconds of each step, the row's median) per measured side."""
    out = []
    for (manager, side), runs in bench.steps.items():
        medians = {name: statistics.median(r[name] for r in runs) for name in STEPS}
        out.append((manager, side, medians, bench.row(f"{manager}.{side}").median))
    return out


def steps_table(bench: Bench) -> str:
    """The environment rows (warm) broken into their steps, a markdown table."""
    head = "| manager, side (warm) | " + " | ".join(STEPS) + " | sum of steps | row (median) |"
    lines = [head, "|---|" + "---:|" * (len(STEPS) + 2)]
    for manager, side, medians, row in step_rows(bench):
        who = "copier-mlops" if side == "ours" else "ccds"
        cells = " | ".join(f"{medians[n]:.2f}" for n in STEPS)
        lines.append(f"| {manager}, {who} | {cells} | {sum(medians.values()):.2f} | {row:.2f} |")
    return "\n".join(lines)


def steps_figure(bench: Bench, path: Path) -> None:
    """A stacked bar per manager and side: the steps of its warm environment row (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    rows = step_rows(bench)
    labels = [f"{m}\n{'copier-mlops' if side == 'ours' else 'ccds'}" for m, side, _, _ in rows]
    fig, ax = plt.subplots(figsize=(3.5 + 1.1 * len(rows), 4.5), dpi=110)
    bottom = [0.0] * len(rows)
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(STEPS):
        colour = colours(i)
        heights = [medians[name] for _, _, medians, _ in rows]
        ax.bar(labels, heights, bottom=bottom, label=name, color=colour, width=0.6)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylim(0, max(bottom, default=1) * 1.05)  # room above the tallest bar
    ax.set_ylabel("seconds (median of the warm runs)")
    ax.set_title("Environment rows step by step\n(the same packages on both sides)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def run(cmd: Cmd, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run `cmd` quietly; its stdout + stderr, RuntimeError with their tails when it fails."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout + proc.stderr


def tree_mb(path: Path) -> float:
    """Size in MB (10^6 bytes) of the files under `path`, each hard-linked file once (uv links
    its cache's files into the environment: they are the environment's all the same)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for item in path.rglob("*"):
        st = item.lstat()
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total / 1e6


def timed(fn: Callable[[], object]) -> float:
    """Seconds that fn() takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def image_size(buildah: Buildah, image: str) -> float:
    """Size in MB (10^6 bytes) of an image: its layers, uncompressed, as `buildah images` sums them."""
    out = buildah.size(image)
    number, unit = re.match(r"([\d.]+)\s*([kMG]?)B", out, re.I).groups()  # type: ignore[union-attr]
    return float(number) * {"": 1e-6, "K": 1e-3, "M": 1, "G": 1e3}[unit.upper()]


def uv_version() -> str:
    """The dev venv's uv version number (e.g. 0.8.3)."""
    return run([BIN / "uv", "--version"]).split()[1]


def version(cmd: Cmd) -> str:
    """First line of a version command's output ("not installed" when it cannot run)."""
    try:
        return run(cmd).strip().splitlines()[0]
    except (RuntimeError, OSError, IndexError):
        return "not installed"


def fmt(value: float, unit: str) -> str:
    """A figure as the table shows it: whole MB, or seconds with two decimals."""
    return f"{value:.0f} MB" if unit == "MB" else f"{value:.2f} s"


# ---------------------------------------------------------------------------- report
def table(bench: Bench, rows: Sequence[Row] | None = None) -> str:
    """The markdown table of `rows` (default: all): runs, median, min, max, ratio, above floor."""
    keys = {r.key for r in bench.rows}
    lines = ["| key | measurement | runs | median | min | max | ratio to | above floor |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in bench.rows if rows is None else rows:
        ratio = f"{r.median / bench.row(r.versus).median:.2f}x `{r.versus}`" if r.versus else ""
        floor = f"{r.key.split('.')[0]}.floor"
        above = (
            f"{r.median - bench.row(floor).median:+.2f} s"
            if floor in keys and r.key != floor
            else ""
        )
        lines.append(f"| `{r.key}` | {r.label} | {len(r.samples)} | {fmt(r.median, r.unit)} | "
                     f"{fmt(min(r.samples), r.unit)} | {fmt(max(r.samples), r.unit)} | {ratio} | {above} |")  # fmt: skip
    return "\n".join(lines)


def targets(bench: Bench) -> list[str]:
    """The targets' verdicts (render vs ccds, uv vs its floor, image size): met or missed."""
    keys = {r.key for r in bench.rows}
    out = []
    if {"render.ours", "render.ccds"} <= keys:
        ours, ccds = bench.row("render.ours").median, bench.row("render.ccds").median
        out.append(f"render no slower than ccds: {ours:.2f} s vs {ccds:.2f} s "
                   f"({ours / ccds:.2f}x): {'met' if ours <= ccds else f'missed by {ours - ccds:.2f} s'}")  # fmt: skip
    if {"uv.ours", "uv.floor"} <= keys:
        gap = bench.row("uv.ours").median - bench.row("uv.floor").median
        out.append(f"uv environment within 1.5 s of `uv sync`'s floor: {gap:+.2f} s: "
                   f"{'met' if gap <= 1.5 else f'missed by {gap - 1.5:.2f} s'}")  # fmt: skip
        if "uv.floor+import" in keys:  # the same work as ours: the first import included
            gap = bench.row("uv.ours").median - bench.row("uv.floor+import").median
            out.append(f"uv environment (warm) within 1.5 s of `uv sync` + the first import: {gap:+.2f} s: "
                       f"{'met' if gap <= 1.5 else f'missed by {gap - 1.5:.2f} s'}")  # fmt: skip
    for m in MANAGERS:  # ahead of ccds given the same packages: at most 0.85x, warm and cold
        for suffix, warmth in (("", "warm"), (".cold", "cold")):
            if {f"{m}.ours{suffix}", f"{m}.ccds{suffix}"} <= keys:
                out.append(ahead(f"{m}, {warmth}", bench.row(f"{m}.ours{suffix}").median,
                                 bench.row(f"{m}.ccds{suffix}").median))  # fmt: skip
    if {"docker.uv.size", "docker.naive.size"} <= keys:
        ours, naive = bench.row("docker.uv.size").median, bench.row("docker.naive.size").median
        out.append(f"uv image at most half the naive image: {ours:.0f} MB vs {naive:.0f} MB "
                   f"({ours / naive:.2f}x): {'met' if ours <= naive / 2 else f'missed by {ours - naive / 2:.0f} MB'}")  # fmt: skip
    return out


def ahead(what: str, ours: float, ccds: float) -> str:
    """The target line "at most 0.85x ccds" for one row: met, or missed by how much."""
    verdict = "met" if ours <= 0.85 * ccds else f"missed by {ours - 0.85 * ccds:.2f} s"
    return f"{what}: at most 0.85x ccds given the same packages: {ours:.2f} s vs {ccds:.2f} s ({ours / ccds:.2f}x): {verdict}"


def tracking_summary(bench: Bench) -> list[str]:
    """What tracking costs, from the tracking section's rows (differences of medians)."""

    def m(key: str) -> float:
        """The median of the row `key`."""
        return bench.row(key).median

    keys = {r.key for r in bench.rows}
    out = []
    for side, who in (("ours", "copier-mlops"), ("ccds", "ccds given the same packages")):
        if f"tracking.{side}.mlflow" in keys:
            out.append(f"MLflow's cost, {who}: {m(f'tracking.{side}.mlflow') - m(f'tracking.{side}.none'):+.2f} s "
                       f"to create the environment (warm), {m(f'tracking.{side}.mlflow.cold') - m(f'tracking.{side}.none.cold'):+.2f} s "
                       f"(cold), {m(f'tracking.{side}.mlflow.size') - m(f'tracking.{side}.none.size'):+.0f} MB of environment")  # fmt: skip
    if {"tracking.ours.mlflow", "tracking.ccds.mlflow"} <= keys:
        out.append(f"with MLflow, copier-mlops vs ccds: {m('tracking.ours.mlflow'):.2f} s vs "
                   f"{m('tracking.ccds.mlflow'):.2f} s warm ({m('tracking.ours.mlflow') / m('tracking.ccds.mlflow'):.2f}x), "
                   f"{m('tracking.ours.mlflow.cold'):.2f} s vs {m('tracking.ccds.mlflow.cold'):.2f} s cold, "
                   f"{m('tracking.ours.mlflow.size'):.0f} MB vs {m('tracking.ccds.mlflow.size'):.0f} MB")  # fmt: skip
    for suffix, warmth in (("", "warm"), (".cold", "cold")):
        if {f"tracking.ours.mlflow{suffix}", f"tracking.ccds.mlflow{suffix}"} <= keys:
            out.append(ahead(f"the default project (MNIST, MLflow), {warmth}",
                             m(f"tracking.ours.mlflow{suffix}"), m(f"tracking.ccds.mlflow{suffix}")))  # fmt: skip
    if "tracking.import.mlflow" in keys:
        out.append(f"import (bytecode compiled): the stack {m('tracking.import.stack'):.2f} s, with mlflow "
                   f"{m('tracking.import.stack+mlflow'):.2f} s ({m('tracking.import.stack+mlflow') - m('tracking.import.stack'):+.2f} s); "
                   f"mlflow alone {m('tracking.import.mlflow'):.2f} s; the interpreter alone {m('tracking.import.python'):.2f} s")  # fmt: skip
    for suffix, what in (("", "wall clock"), (".cpu", "CPU time")):
        if {f"tracking.train.mlflow{suffix}", f"tracking.train.none{suffix}"} <= keys:
            ours, floor = m(f"tracking.train.mlflow{suffix}"), m(f"tracking.train.none{suffix}")
            verdict = "met" if ours <= 1.5 * floor else f"missed by {ours - 1.5 * floor:.2f} s"
            out.append(f"the student's loop (`make train DATASET=digits`, warm, {what}) at most 1.5x "
                       f"without tracking: {ours:.2f} s vs {floor:.2f} s ({ours / floor:.2f}x): {verdict}")  # fmt: skip
    if "tracking.ours.mlflow.sanity" in keys:
        out.append(f"the hook's sanity import (first import, bytecode written): {m('tracking.ours.none.sanity'):.2f} s "
                   f"without, {m('tracking.ours.mlflow.sanity'):.2f} s with mlflow")  # fmt: skip
    return out


def tracking_block(bench: Bench, load: str, started: datetime) -> str:
    """The tracking section as a marked block: when and where, the summary, its table, notes."""
    rows = [r for r in bench.rows if r.key.startswith("tracking.")]
    commit = run(["git", "-C", ROOT, "describe", "--always", "--dirty"]).strip()
    return (f"{TRACKING_START}\n## Experiment tracking's cost (`python -m bench.bench --only tracking`)\n\n"
            f"Measured {started:%Y-%m-%d %H:%M} (local time) on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average at start {load} (other work shares this machine); copier-mlops {commit}, "
            f"mlflow {bench.mlflow_version}, {version([BIN / 'uv', '--version'])}.\n\n"
            + "".join(f"- {line}\n" for line in tracking_summary(bench))
            + "\n" + table(bench, rows) + "\n\n" + TRACKING_NOTES + TRACKING_END + "\n")  # fmt: skip


def section_of(key: str) -> str:
    """The --only section a row's key belongs to (render, env, docker, tracking)."""
    first = key.split(".")[0]
    return "env" if first in MANAGERS else first


def steps_section(bench: Bench, out: Path) -> str:
    """The environment rows step by step: the figure (drawn beside `out`) and its table."""
    if not bench.steps:
        return ""
    figure = out.with_name(f"{out.stem}-steps.png")
    steps_figure(bench, figure)
    return ("## Environment rows, step by step (warm, medians)\n\n"
            f"![A stacked bar per manager and side: the steps of its environment row]({figure.name})\n\n"
            + steps_table(bench) + "\n\n" + STEPS_NOTES)  # fmt: skip


def put_block(doc: str, block: str) -> str:
    """`doc` with its marked block (<!-- name:start --> ... <!-- name:end -->) replaced by
    `block`, or `block` appended."""
    start, end = block.split("\n", 1)[0], block.rstrip("\n").rsplit("\n", 1)[1]
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        return head + block.rstrip("\n") + rest.split(end, 1)[1]
    return doc.rstrip("\n") + ("\n\n" if doc else "") + block


def blocks_of(doc: str) -> list[str]:
    """The marked blocks other benches (bench/serving.py, the tracking section) keep in `doc`."""
    found = re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->\n?", doc, re.S)
    return [b.group(0) for b in found]


def header(load: str, started: datetime) -> str:
    """The report's header lines: date, machine, load, and each tool's version."""
    tools = {
        "copier-mlops": run(["git", "-C", ROOT, "describe", "--always", "--dirty"]).strip(),
        "copier": version([BIN / "copier", "--version"]),
        "ccds": f"cookiecutter-data-science {CCDS_VERSION} (PyPI) with its v{CCDS_VERSION} template",
        "uv": version([BIN / "uv", "--version"]),
        "poetry": version([BIN / "poetry", "--version"]),
        "pip": version([f"python{PY}", "-m", "pip", "--version"]).split(" from ")[0],
        "Python": version([f"python{PY}", "--version"]),
        "buildah": version(["buildah", "--version"]),
    }
    return (f"- date: {started:%Y-%m-%d %H:%M} (local time); machine: {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}\n"
            f"- load average at start (1, 5, 15 min): {load}\n"
            + "".join(f"- {k}: {v}\n" for k, v in tools.items()))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the chosen sections, write docs/benchmarks.md (or --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: render, the uv environment and tracking (copier-mlops' side), one "
                        "run of each row (the cold-cache rows included); no poetry or venv, no docker")  # fmt: skip
    parser.add_argument("--ccds-template", help=f"git repository of ccds to export v{CCDS_VERSION} from "
                        f"(default: clone {CCDS_URL})")  # fmt: skip
    parser.add_argument("--no-docker", action="store_true", help="skip the image builds")
    parser.add_argument(
        "--no-tracking",
        action="store_true",
        help="skip the tracking section (the file keeps its last tracking block)",
    )
    parser.add_argument("--no-ccds", action="store_true",
                        help="measure copier-mlops alone (where ccds's template cannot be fetched)")  # fmt: skip
    parser.add_argument("--only", choices=["render", "env", "docker", "tracking"],
                        help="one section only (tracking: its own part of the file, the rest kept)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--work", type=Path, default=ROOT / ".bench", help="scratch folder (kept for reuse)"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()  # a killed bench stops what it started

    started, t0 = datetime.now(), time.perf_counter()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    args.work.mkdir(parents=True, exist_ok=True)
    bench = Bench(Path(tempfile.mkdtemp(prefix="run-", dir=args.work)), args.ccds_template,
                  with_ccds=not args.no_ccds)  # fmt: skip
    sections: dict[str, float] = {}

    def section(name: str, fn: Callable[[], object]) -> None:
        """Run one section, recording how long it took."""
        sections[name] = timed(fn)

    try:
        section("setup", bench.setup)
        if args.quick:
            section("render", lambda: bench.render(1))
            section("environments", lambda: bench.environments(["uv"], {"uv": 1}))
            # ccds's side of tracking is ccds_env again (the environments section runs it).
            section("tracking", lambda: bench.tracking(1, 1, with_ccds=False))
        else:
            if args.only in (None, "render"):
                section("render", lambda: bench.render(3))
            if args.only in (None, "env"):
                runs = {"uv": 3, "poetry": 2, "venv": 2}
                for m in MANAGERS:
                    section(m, functools.partial(bench.environments, [m], runs))
            if args.only in (None, "docker") and not args.no_docker:
                section("docker", bench.docker)
            if args.only in (None, "tracking") and not args.no_tracking:
                section("tracking", lambda: bench.tracking(2, 5))
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    tracked = tracking_block(bench, load, started) if "tracking" in sections else ""
    if args.only == "tracking":  # the rest of the file stays as the last full run wrote it
        print("\n" + tracked)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(put_block(old, tracked), encoding="utf-8")
        return 0
    steps = "".join(f"- {k}: " + " | ".join(v) + "\n" for k, v in bench.step_times.items())
    # With --only, the rows of the sections not run stay as the last report had them.
    old_rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w.+-]+)` \|.*$", old, re.M)}
    kept = {k: line for k, line in old_rows.items() if args.only and section_of(k) != args.only
            and section_of(k) != "tracking" and k not in {r.key for r in bench.rows}}  # fmt: skip
    was = re.search(r"^- date: (.+?) \(local time\)", old, re.M)
    kept_note = (f"\n\nRows of the sections this run did not measure ({', '.join(sorted({section_of(k) for k in kept}))}) "
                 f"are kept from the previous report ({was.group(1) if was else 'date unknown'}): their "
                 "ratios compare that run's figures.") if kept else ""  # fmt: skip
    doc = (f"# Benchmarks: copier-mlops vs cookiecutter-data-science\n\n"
           f"Generated by `{' '.join(['python -m bench.bench', *(argv if argv is not None else sys.argv[1:])])}` "
           f"in {elapsed / 60:.1f} min (per section: "
           + ", ".join(f"{k} {v / 60:.1f}" for k, v in sections.items())
           + "); do not edit by hand.\n\n"
           + header(load, started) + "\n## Targets\n\n" + "".join(f"- {t}\n" for t in targets(bench))
           + "\n## Table\n\n" + table(bench, [r for r in bench.rows if not r.key.startswith("tracking.")])
           + "".join(f"\n{line}" for line in kept.values()) + kept_note
           + "\n\n" + steps_section(bench, args.out) + NOTES
           + "\n## Hook step times (copier-mlops runs, as the hook prints them)\n\n" + steps)  # fmt: skip
    for block in blocks_of(old) + ([tracked] if tracked else []):  # other benches' parts stay
        doc = put_block(doc, block)
    print("\n" + doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(doc, encoding="utf-8")
    return 0


NOTES = f"""\
## How each row is measured

- Every figure is the median of `runs` runs (min and max beside it); ratios and differences
  compare two medians of this same run.
- `render`: default answers on both sides, no environment and no git (copier-mlops: uv, sklearn,
  the MNIST starter, GitHub CI, Dockerfile; ccds: virtualenv, requirements.txt, code scaffold,
  mkdocs). Both read a local template folder (copier-mlops' working tree, ccds's v{CCDS_VERSION}
  tag), so no clone is timed.
- Environment rows: both projects get the same packages, the runtime requirements of the project
  copier-mlops renders for the manager (the stack, {", ".join(STACK)}, with Hydra and its
  configuration packages), plus pytest and ruff, no git, no CI, no notebook kernel, Python {PY};
  both import the same modules. copier-mlops: one `copier copy --trust` that renders,
  creates the environment, installs the project, writes the lock file, imports the package and the
  stack and runs `pip check`. ccds: `ccds --no-input`, the packages added to its dependency file
  (`basic` would add jupyterlab and more), `make create_environment`, `make requirements`, then an
  import of the same modules; uv and poetry use pyproject.toml, virtualenv uses requirements.txt.
  virtualenvwrapper (ccds's `mkvirtualenv`) is not installed here: `python{PY} -m venv` stands in
  for it, then ccds's own `make requirements` runs with that venv's python. Poetry uses the index's
  simple API as its primary source on both sides (the index here has no JSON API).
- floor: the manager's own install command alone, on a project copier-mlops made (lock file
  present, `.venv` deleted), warm cache; for venv, the same pip upgrade (the bundled pip is older
  than 25) and `pip install --no-compile` the hook runs. "above floor" = the row's median minus
  its floor. floor+import adds the stack's first import (it byte-compiles what it imports), which
  every environment row includes.
- The machine's PYTHONDONTWRITEBYTECODE is unset for every tool, as on a user's machine.
- cold: each side's first run per manager, with empty uv, pip and poetry caches (and poetry
  virtualenv folder) of its own; warm: the runs after it, on the caches it filled. The user's own
  caches are never read. The index and the OS file cache stay. On this machine the index (a
  proxy of PyPI) sends no cache headers, so pip's HTTP cache stores nothing (its cache folder
  stays empty): pip's warm runs download again like its cold ones, and for venv the warm/cold
  difference is noise; uv and poetry keep every wheel they download, so theirs is real.
- Docker rows: buildah (overlay storage where the kernel allows, chroot isolation) with a private, empty layer cache, on local base
  images (`python:{PY}-slim` = Debian bookworm minbase + python3, the uv image from the uv wheel);
  one build each, since an image build is minutes. Size = `buildah images` size. Second build =
  after appending a comment to `src/<package>/__init__.py`: copier-mlops rebuilds the wheel, its
  install layer and the probe (which imports the whole stack again); the dependency layer is the
  final stage's own, reused as it is. naive = `FROM python:{PY}-slim`,
  `pip install {" ".join(STACK)}`, `COPY . /app`, `pip install .` in one stage, same source tree.
"""


STEPS_NOTES = """\
copier-mlops: one `copier copy --trust`; render = copier's time until the environment tool
started (the tool's Python start included), git = copier's time after the tool ended (the
git-init task, when asked for, then copier's own end), the rest the tool's own step times
(tools/envtool-result.json): tool start = find the tool, find Python, create the environment and
the tool's time between steps; pip check = the dependency check inside the sanity import's probe.
ccds: each step timed by the bench: render (ccds, then its dependency file given the packages),
tool start (`make create_environment`; venv: `python -m venv`), install (`make requirements`;
uv's `uv sync` writes its lock file in it), sanity import (`python -c 'import ...'`); ccds takes no
lock, pip check, kernel or git step of its own. Each step is the median of the warm runs, so the
sum can differ a little from the row's median.

"""


TRACKING_NOTES = f"""\
How each row is measured: uv, Python {PY}, scikit-learn, the MNIST starter, no serving, no DVC,
no git, no CI, no notebook kernel; `experiment_tracking` none (the stack: numpy, pandas,
matplotlib, scikit-learn, hydra-core) or mlflow (the same and mlflow). copier-mlops: one
`copier copy --trust` (render, environment, lock file, sanity import, `pip check`). ccds: its
uv project given exactly the generated project's runtime requirements, `make create_environment`,
`make requirements`, then the import of the same modules. Each side and answer has a package
cache of its own: its first run is the cold one, the runs after it warm (interleaved). Sizes:
the files under `.venv`, each hard-linked file once (both sides also carry their dev tools:
copier-mlops pytest, ruff and mypy; ccds pytest and ruff). Sanity import: the step time the hook
prints (the first import in a new environment, which writes the bytecode). Import rows: in the
cold mlflow environment after one import of each, so bytecode and the OS file cache are warm.
The student's loop: `make train DATASET=digits` (scikit-learn's 8x8 digits, 30 epochs) in the
cold projects, after one run that writes the bytecode, interleaved; its CPU time is the user + sys
time of every process the command starts (make, uv, Python, MLflow's tracker process).

"""


if __name__ == "__main__":
    sys.exit(main())
