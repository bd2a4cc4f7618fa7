"""DVC (issue 24): the data_versioning and dvc_remote questions, the files they render, and, in one
real generated project (copier copy --trust, uv, the real dvc), the pipeline on the bundled
digits: everything runs once, nothing the second time, a changed training parameter re-runs
training and evaluation only; the metrics; a push/pull round trip through the local remote."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

from .conftest import (
    COPIER,
    QUIET,
    copier_copy,
    env_without_dev_venv,
    find_python,
    git,
    output,
    posix_only,
    pty_run,
    read_result,
    render,
    run_ok,
    tomllib,
    tool_bin,
)

DVC = {"data_versioning": "dvc"}
# scheme -> (a remote URL without credentials, its plugin, the CI secret CI checks first)
REMOTES = {
    "s3": ("s3://team-bucket/mnist/dvc", "dvc-s3", "AWS_SECRET_ACCESS_KEY"),
    "gs": ("gs://team-bucket/dvc", "dvc-gs", "GCP_SERVICE_ACCOUNT_KEY"),
    "azure": ("azure://container/dvc", "dvc-azure", "AZURE_STORAGE_CONNECTION_STRING"),
    "ssh": ("ssh://student@lab.example.org:2222/srv/dvc", "dvc-ssh", "DVC_SSH_KEY"),
}
SECRET = "s3cr3tT0ken"
# Each is refused: credentials, a query carrying a token, quotes, spaces, line breaks, a shell
# command, another scheme, a plain path (the local remote is the empty answer).
HOSTILE = [
    f"s3://AKIAEXAMPLE:{SECRET}@team-bucket/dvc",
    f"s3://{SECRET}@team-bucket/dvc",
    f"gs://team-bucket/dvc?token={SECRET}",
    f"azure://container/dvc?sig={SECRET}&sv=2024",
    f"ssh://student:{SECRET}@lab.example.org/srv/dvc",
    f's3://team-bucket/dvc" {SECRET}',
    f"s3://team-bucket/dvc'; echo {SECRET}",
    f"gs://team bucket/{SECRET}",
    f"s3://team-bucket/dvc\n{SECRET}",
    f"s3://team-bucket/dvc#{SECRET}",
    f"https://example.org/{SECRET}",
    f"/home/student/{SECRET}",
]


def files_of(project: Path) -> dict[str, str]:
    return {
        p.relative_to(project).as_posix(): p.read_text("utf-8", errors="replace")
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


# ---------------------------------------------------------------- rendering (fast)


def test_without_dvc_nothing_of_it_is_rendered(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", ml_framework="sklearn")
    assert not (dst / ".dvc").exists() and not (dst / "dvc.yaml").exists()
    assert not (dst / ".dvcignore").exists()
    for name, text in files_of(dst).items():
        # .dockerignore keeps a .dvc folder added later (cache, credentials) out of every image
        assert "dvc" not in text.lower() or name == ".dockerignore", name
    assert "dvc_remote" not in yaml.safe_load((dst / ".copier-answers.yml").read_text())


@pytest.mark.parametrize("scheme", ["local", *REMOTES])
def test_remote_and_plugin_reach_every_file(template: Path, tmp_path: Path, scheme: str) -> None:
    url, plugin, secret = REMOTES.get(scheme, ("", "", ""))
    dst = render(template, tmp_path / "p", ml_framework="sklearn", dvc_remote=url, **DVC)
    config = (dst / ".dvc" / "config").read_text()
    expected = url or "../../my-ml-project-dvc-remote"  # relative to .dvc/: beside the project
    assert f"url = {expected}\n" in config and "remote = storage" in config
    assert (dst / ".dvc" / ".gitignore").read_text().split() == ["/config.local", "/tmp", "/cache"]
    deps = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "dvc>=3.50" in deps
    assert [d for d in deps if d.startswith("dvc-")] == ([f"{plugin}>=3"] if plugin else [])
    envtool = json.loads((dst / "tools" / "envtool.json").read_text())
    imports = {d["import"] for d in envtool["dependencies"]}  # the sanity import and the doctor
    assert "dvc" in imports and (plugin.replace("-", "_") in imports if plugin else True)
    ci = yaml.safe_load((dst / ".github" / "workflows" / "ci.yml").read_text())
    steps = {s.get("name", ""): s for s in ci["jobs"]["test"]["steps"]}
    pull = next(s for n, s in steps.items() if n.startswith("Pull the DVC data"))
    if secret:
        assert f"secrets.{secret}" in pull["env"][secret] and "-m dvc pull" in pull["run"]
        assert f'if [ -z "${secret}" ]' in pull["run"]
    else:
        assert "Skipping dvc pull" in pull["run"] and "dvc pull\n" not in pull["run"]
    readme = (dst / "README.md").read_text()
    assert "## Data versioning with DVC" in readme and "make repro DATASET=digits" in readme


@pytest.mark.parametrize("manager", ["venv", "conda", "poetry", "conda-uv"])
def test_dvc_and_its_plugin_in_every_managers_files(
    template: Path, tmp_path: Path, manager: str
) -> None:
    dst = render(template, tmp_path / "p", env_manager=manager, dvc_remote=REMOTES["gs"][0], **DVC)
    if manager == "venv":
        reqs = (dst / "requirements.txt").read_text().split()
        assert "dvc>=3.50" in reqs and "dvc-gs>=3" in reqs
    elif manager == "conda":
        deps = yaml.safe_load((dst / "environment.yml").read_text())["dependencies"]
        assert "dvc>=3.50" in deps and "dvc-gs>=3" in deps  # conda-forge has both
    else:
        deps = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"]
        assert "dvc>=3.50" in deps and "dvc-gs>=3" in deps


def test_gitlab_ci_pulls_with_the_variable_and_parses(template: Path, tmp_path: Path) -> None:
    for url in ("", REMOTES["ssh"][0]):
        dst = render(template, tmp_path / f"p{len(url)}", ci="gitlab", dvc_remote=url, **DVC)
        script = "\n".join(yaml.safe_load((dst / ".gitlab-ci.yml").read_text())["test"]["script"])
        assert "Skipping dvc pull" in script
        assert ("-m dvc pull" in script) == bool(url)
        assert ("DVC_SSH_KEY" in script) == bool(url)


def test_without_the_example_the_skeleton_gets_a_pipeline(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", example="none", **DVC)
    assert (dst / ".dvc" / "config").is_file() and not (dst / "params.yaml").exists()
    stages = yaml.safe_load((dst / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["train"] and "data/raw" in stages["train"]["deps"]
    assert stages["train"]["outs"][0] == "models/default_sklearn.joblib"
    assert stages["train"]["metrics"] == ["models/default_train_scores.json"]
    makefile = (dst / "Makefile").read_text()
    assert "repro:" in makefile and "dvc-push:" in makefile


def test_one_parametrised_pipeline_names_the_frameworks_model(
    template: Path, tmp_path: Path
) -> None:
    """One pipeline driven by params.yaml's dataset (not a set of stages per dataset); metrics
    and plots are files of their own, the confusion plot DVC's confusion template."""
    for framework, model in [
        ("pytorch", "${dataset}_pytorch.pt"),
        ("tensorflow", "${dataset}_tensorflow.keras"),
    ]:
        dst = render(
            template, tmp_path / framework, ml_framework=framework, python_version="3.12", **DVC
        )
        stages = yaml.safe_load((dst / "dvc.yaml").read_text())["stages"]
        assert list(stages) == ["data", "train", "evaluate"]
        assert stages["train"]["outs"][0] == f"models/{model}"
        assert f"models/{model}" in stages["evaluate"]["deps"]
        assert stages["train"]["cmd"].endswith("train data=${dataset}")
        plot = stages["evaluate"]["plots"][0]["models/${dataset}_predictions.csv"]
        assert plot["template"] == "confusion" and (plot["x"], plot["y"]) == ("actual", "predicted")
        assert yaml.safe_load((dst / "params.yaml").read_text()) == {"dataset": "mnist"}


@pytest.mark.parametrize("name", ["dvc", "dvc_data", "hydra", "scmrepo", "dvc_s3"])
def test_package_name_refuses_dvcs_modules(template: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="which the project's environment installs"):
        render(template, tmp_path / "p", package_name=name, **DVC)


@pytest.mark.parametrize("url", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_remote_is_refused_before_anything_is_written(
    template: Path, tmp_path: Path, url: str
) -> None:
    with pytest.raises(ValueError, match="dvc_remote") as refused:
        run_copy(
            str(template),
            tmp_path / "p",
            data={**QUIET, **DVC, "dvc_remote": url},
            defaults=True,
            unsafe=True,
            quiet=True,
        )
    assert SECRET not in str(refused.value)  # the message never repeats the answer
    assert not (tmp_path / "p").exists()


def test_hostile_remote_through_the_cli_says_what_to_do(template: Path, tmp_path: Path) -> None:
    env = env_without_dev_venv(tool_bin(tmp_path, "uv"))
    proc = copier_copy(
        template,
        tmp_path / "p",
        env,
        create_env="false",
        data_versioning="dvc",
        dvc_remote=HOSTILE[0],
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "carries credentials" in text
    assert "AWS_ACCESS_KEY_ID" in text and "dvc remote modify --local" in text
    assert SECRET not in text.replace(HOSTILE[0], "")  # only copier's own echo of --data, if any
    leaked = [
        n
        for n, t in (files_of(tmp_path / "p") if (tmp_path / "p").exists() else {}).items()
        if SECRET in t
    ]
    assert leaked == []


def newest_question(seen: bytes) -> bytes:
    """The line of the newest question copier asked (each starts with its microphone), without
    terminal escapes; empty before the first."""
    start = seen.rfind("🎤".encode())
    if start < 0:
        return b""
    line = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen[start:])
    return line.replace(b"\r", b"\n").split(b"\n")[0]


@posix_only("a pseudo-terminal (pty, termios)")
def test_interactive_remote_with_a_token_is_asked_again(template: Path, tmp_path: Path) -> None:
    """In a terminal: a remote with a token is refused with the fix, the answer stays editable;
    the corrected URL is written. Every other question is answered with Enter (its default)."""
    step, answered = 0, b""

    def reply(seen: bytes) -> bytes | None:
        # One key per question: copier may be quiet between questions (a slow machine), and a
        # key typed then would answer the next question before it is shown.
        nonlocal step, answered
        if step == 1 and b"carries a query" in seen:
            step = 2
            return b"\x15" + REMOTES["s3"][0].encode() + b"\r"  # Ctrl-U clears the answer
        question = newest_question(seen)
        if not question or question == answered:
            return None
        answered = question
        if step == 0 and b"DVC remote" in question:
            step = 1
            return HOSTILE[2].encode() + b"\r"
        return b"\r"

    dst = tmp_path / "p"
    args = [COPIER, "copy", "--trust", "-d", "create_env=false", "-d", "git_init=false",
            "-d", "data_versioning=dvc", template, dst]  # fmt: skip
    code, text = pty_run(args, reply)
    assert code == 0 and step == 2, text[-3000:]
    assert "Traceback" not in text
    assert f"url = {REMOTES['s3'][0]}" in (dst / ".dvc" / "config").read_text()
    assert not [n for n, t in files_of(dst).items() if SECRET in t]


# ---------------------------------------------------------------- a real project (slow)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture(scope="module")
def project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """copier copy --trust (git-init and the uv set-up run), then `make repro DATASET=digits`."""
    python = find_python("3.11") or pytest.skip("no Python 3.11 on this machine (PATH or pyenv)")
    tmp = tmp_path_factory.mktemp("dvc")
    env = env_without_dev_venv(
        tool_bin(tmp, "uv"),
        UV_PYTHON=python,
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"),
        MPLBACKEND="Agg",
        GIT_AUTHOR_NAME="Student",
        GIT_AUTHOR_EMAIL="student@example.org",
        GIT_COMMITTER_NAME="Student",
        GIT_COMMITTER_EMAIL="student@example.org",
    )
    dst = tmp / "digit-lab"
    proc = copier_copy(
        template,
        dst,
        env,
        project_name="Digit Lab",
        env_manager="uv",
        ml_framework="sklearn",
        python_version="3.11",
        jupyter_kernel="false",
        dockerfile="false",
        data_versioning="dvc",
    )
    assert proc.returncode == 0 and read_result(dst).get("status") == "ok", proc.stdout[-3000:]
    return dst, env


@pytest.mark.slow
def test_first_commit_is_initialised_for_dvc_and_the_doctor_checks_it(
    project: tuple[Path, dict[str, str]],
) -> None:
    dst, env = project
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=dst, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml"} <= set(tracked)
    doctor = output(run_ok("doctor", ["python3", "tools/envtool", "doctor"], dst, env))
    assert "dvc" in doctor, doctor
    out = output(run_ok("dvc doctor", ["uv", "run", "--frozen", "dvc", "doctor"], dst, env))
    assert "Repo: dvc, git" in out  # the rendered .dvc is a DVC repository to dvc itself
    tests = output(
        run_ok(
            "project pytest",
            ["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"],
            dst,
            env,
        )
    )
    assert " passed" in tests.strip().splitlines()[-1] and "failed" not in tests, tests[-2000:]


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_repro_runs_what_changed_and_nothing_else(project: tuple[Path, dict[str, str]]) -> None:
    dst, env = project
    repro = ["make", "repro", "DATASET=digits"]
    first = output(run_ok("make repro (all stages)", repro, dst, env))
    assert ran(first) == ["data", "train", "evaluate"], first
    assert yaml.safe_load((dst / "params.yaml").read_text())["dataset"] == "digits"
    second = output(run_ok("make repro (nothing changed)", repro, dst, env))
    assert ran(second) == [] and "Data and pipelines are up to date" in second, second

    trainer = dst / "configs" / "trainer" / "default.yaml"
    config: dict[str, Any] = yaml.safe_load(trainer.read_text())
    trainer.write_text(trainer.read_text().replace(f"epochs: {config['epochs']}", "epochs: 4"))
    third = output(run_ok("make repro (epochs changed)", repro, dst, env))
    assert ran(third) == ["train", "evaluate"], third
    metrics = json.loads((dst / "models" / "digits_metrics.json").read_text())
    assert metrics["epochs"] == 4 and len(metrics["history"]) == 4  # the parameter reached training

    show = ["uv", "run", "--frozen", "dvc", "metrics", "show"]
    table = output(run_ok("dvc metrics show", show, dst, env))
    report = json.loads((dst / "models" / "digits_evaluation.json").read_text())
    row = next(line for line in table.splitlines() if line.startswith("models/digits_test_scores"))
    assert "accuracy" in table and str(round(report["accuracy"], 5)) in row, table
    data, _ = json.JSONDecoder().raw_decode(
        output(run_ok("dvc metrics show --json", [*show, "--json"], dst, env))
    )
    files = data[""]["data"]
    found = files["models/digits_test_scores.json"]["data"]
    assert found["accuracy"] == pytest.approx(report["accuracy"]) and report["accuracy"] > 0.8
    trained = files["models/digits_train_scores.json"]["data"]
    assert set(trained) == {"loss", "train_accuracy", "val_accuracy"}, trained  # metrics only


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_push_then_pull_restores_byte_identical_files(project: tuple[Path, dict[str, str]]) -> None:
    dst, env = project
    run_ok("make repro (before push)", ["make", "repro", "DATASET=digits"], dst, env)
    outputs = [
        dst / "models" / "digits_sklearn.joblib",
        dst / "models" / "digits_metrics.json",
        dst / "models" / "digits_evaluation.json",
        dst / "reports" / "figures" / "digits_confusion_matrix.png",
        # metrics and plots (issue 35), and what the data stage loaded
        *(
            dst / "models" / f"digits_{n}"
            for n in ("train_scores.json", "test_scores.json", "history.csv", "predictions.csv")
        ),
        dst / "data" / "raw" / "digits.txt",
    ]
    before = {p: sha256(p) for p in outputs}
    pushed = output(run_ok("make dvc-push", ["make", "dvc-push"], dst, env))
    remote = dst.parent / "digit-lab-dvc-remote"  # the folder beside the project
    assert re.search(r"\d+ files pushed|Everything is up to date", pushed), pushed
    assert remote.is_dir(), pushed

    shutil.rmtree(dst / ".dvc" / "cache")
    for p in outputs:
        p.unlink()
    # The plain commands, as a user types them: only the digits ever ran in this project.
    dvc = ["uv", "run", "--frozen", "dvc"]
    pulled = output(run_ok("dvc pull", [*dvc, "pull"], dst, env))
    assert {p: sha256(p) for p in outputs} == before, pulled
    status = output(run_ok("dvc status", [*dvc, "status"], dst, env))
    assert "Data and pipelines are up to date" in status, status
    table = output(run_ok("dvc metrics show", [*dvc, "metrics", "show"], dst, env))
    assert "models/digits_test_scores.json" in table and "ERROR" not in table, table
    assert "WARNING" not in table, table  # dvc exits 0 even when it cannot read a metrics file
    page = output(run_ok("dvc plots show", [*dvc, "plots", "show"], dst, env))
    assert (dst / "dvc_plots" / "index.html").is_file() and "ERROR" not in page, page
    # Nothing of the remote, the cache or the plots page went into git: .dvc/.gitignore and
    # the project's .gitignore keep them out.
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=dst,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".dvc/cache" not in untracked and "models/" not in untracked, untracked
    assert "dvc_plots" not in untracked, untracked


@pytest.mark.slow
@posix_only("make with the Makefile's POSIX shell recipes")
@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_two_identical_runs_give_an_empty_metrics_diff(
    project: tuple[Path, dict[str, str]],
) -> None:
    """A forced second run of the same pipeline (same code, data and parameters) changes no
    metric: `dvc metrics diff` against the committed first run prints nothing."""
    dst, env = project
    run_ok("make repro (first run)", ["make", "repro", "DATASET=digits"], dst, env)
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "--allow-empty", "-m", "the first run")
    forced = ["uv", "run", "--frozen", "dvc", "repro", "--force"]
    again = output(run_ok("dvc repro --force (same parameters)", forced, dst, env))
    assert ran(again) == ["data", "train", "evaluate"], again
    diff = ["uv", "run", "--frozen", "dvc", "metrics", "diff", "--all"]
    table = output(run_ok("dvc metrics diff", diff, dst, env))
    rows = [line for line in table.splitlines() if line.startswith("models/")]
    assert len(rows) == 7 and all(float(line.split()[-1]) == 0 for line in rows), table
    changed = ["uv", "run", "--frozen", "dvc", "metrics", "diff"]
    assert output(run_ok("dvc metrics diff (changes only)", changed, dst, env)).strip() == ""
