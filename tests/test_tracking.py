"""Experiment tracking, configuration and logging in a generated project (issue 22).

Renders: the experiment_tracking question picks the dependencies, configs and Makefile target.
In real environments (slow; one uv project with MLflow shared by the module): two runs with
different overrides become two MLflow runs whose model predicts like the saved one, registered
as versions 1 and 2 of the package's model, and `make evaluate` adds its results to the run
that trained the evaluated model; a real
`mlflow server` on a loopback port records a run sent through MLFLOW_TRACKING_URI (read back over
REST); `make ui` answers; an unreachable server fails fast with the fix; a wrong override is one
line; the example=none skeleton's own tests pass. W&B offline writes the run (and the
evaluation's own run, which names it) locally and never touches the network. (torchrun with 2 processes recording one MLflow run, and the PyTorch
skeleton, are checked in test_mnist.py's PyTorch environment.) Every process a test starts is
stopped with its process group.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from devsupport import free_port, started, wait_for_http
from tests.conftest import (
    PKG,
    TIMES,
    dev_tool,
    digit_lab,
    env_without_dev_venv,
    find_python,
    posix_only,
    run_ok,
    skeleton_tests_pass,
    tomllib,
    tool_bin,
    venv_python,
)

UV = dev_tool("uv")


# ---------------------------------------------------------------- renders (fast)


@pytest.mark.parametrize(
    ("answers", "tracker"),
    [
        ({"example": "mnist", "ml_framework": "sklearn"}, "mlflow"),  # the default with MNIST
        ({"example": "mnist", "ml_framework": "pytorch", "experiment_tracking": "wandb"}, "wandb"),
        ({"example": "mnist", "ml_framework": "tensorflow", "experiment_tracking": "none"}, "none"),
        ({"example": "none", "ml_framework": "sklearn"}, "none"),  # the default without it
    ],
    ids=["sklearn-mlflow", "pytorch-wandb", "tensorflow-none", "no-example"],
)
def test_the_answer_picks_dependencies_configs_and_targets(
    template: Path, tmp_path: Path, answers: dict[str, str], tracker: str
) -> None:
    dst = digit_lab(template, tmp_path / "p", **answers)
    recorded = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert recorded["experiment_tracking"] == tracker
    deps = " ".join(tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "hydra-core" in deps
    assert ("mlflow" in deps, "wandb" in deps) == (tracker == "mlflow", tracker == "wandb")
    configs = dst / "configs"
    assert sorted(p.stem for p in (configs / "tracking").glob("*.yaml")) == sorted(
        {tracker, "none"}
    )
    train_yaml = yaml.safe_load((configs / "train.yaml").read_text())
    assert {"tracking": tracker} in train_yaml["defaults"]
    assert {"model": answers["ml_framework"]} in train_yaml["defaults"]
    for path in configs.rglob("*.yaml"):
        yaml.safe_load(path.read_text())  # every config parses
    makefile = (dst / "Makefile").read_text()
    assert ("\nui:" in makefile) == (tracker == "mlflow")
    ignored = (dst / ".gitignore").read_text().split()
    assert {"/mlflow.db", "/mlartifacts/", "/runs/", "/wandb/", "/outputs/"} <= set(ignored)


def test_no_training_code_means_no_configs(template: Path, tmp_path: Path) -> None:
    dst = digit_lab(template, tmp_path / "p", ml_framework="none")
    assert not (dst / "configs").exists()
    deps = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith("hydra-core") for d in deps)


# ---------------------------------------------------------------- helpers for real runs


# Run in the project's environment: what the MLflow store holds, as JSON.
READ_STORE = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
(experiment,) = [e for e in client.search_experiments() if e.name == "digit-lab"]
out = []
for run in client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]):
    rid = run.info.run_id
    out.append({
        "id": rid,
        "status": run.info.status,
        "params": run.data.params,
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "metrics": run.data.metrics,
        "loss_steps": [m.step for m in client.get_metric_history(rid, "loss")],
        "artifacts": sorted(a.path for a in client.list_artifacts(rid)),
        "evaluation": sorted(a.path for a in client.list_artifacts(rid, "evaluation")),
    })
print("STORE " + json.dumps(out))
"""

# Each logged model (runs:/<id>/model or models:/<name>/<version>, through the project's own
# loader) predicts like the file that training saved in the run's folder: arguments are
# (uri, file) pairs, one line printed per pair (one process: MLflow's import is paid once).
SAME_PREDICTIONS = """
import sys
from digit_lab.data import load_dataset, to_features
from digit_lab.model import load_model, predict
from digit_lab.tracking import load_logged_model
x = to_features(load_dataset("digits").x_test)
for uri, file in zip(sys.argv[1::2], sys.argv[2::2]):
    logged = predict(load_logged_model(uri), x)
    saved = predict(load_model(file), x)
    print("SAME", bool((logged == saved).all()), len(x))
"""

# The model registry's versions of the package's model: [[version, run id], ...].
READ_REGISTRY = """
import json, sys
from mlflow.tracking import MlflowClient
versions = MlflowClient(sys.argv[1]).search_model_versions("name = 'digit_lab'")
print("VERSIONS " + json.dumps(sorted([int(v.version), v.run_id] for v in versions)))
"""


def read_store(py: str, dst: Path, env: dict[str, str], uri: str) -> list[dict[str, Any]]:
    out = run_ok("read the MLflow store", [py, "-c", READ_STORE, uri], dst, env).stdout
    return list(json.loads(out.split("STORE ", 1)[1]))


# ---------------------------------------------------------------- scikit-learn + uv + MLflow


@pytest.fixture(scope="module")
def mlflow_project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    python = find_python("3.11") or pytest.skip("no Python 3.11 on this machine")
    where = tmp_path_factory.mktemp("tracking") / "p"
    dst = digit_lab(template, where, env_manager="uv", ml_framework="sklearn")
    bin_dir = tool_bin(Path(tempfile.gettempdir()) / "copier-mlops-tracking", "uv")
    env = env_without_dev_venv(bin_dir, UV_PYTHON=python, MPLBACKEND="Agg")
    env.pop("MLFLOW_TRACKING_URI", None)
    run_ok("tracking: uv sync (sklearn + mlflow + hydra)", [UV, "sync"], dst, env)
    return dst, env


def py_of(dst: Path) -> str:
    return str(venv_python(dst / ".venv"))


@pytest.mark.slow
def test_two_runs_with_different_overrides_are_two_mlflow_runs(
    mlflow_project: tuple[Path, dict],
) -> None:
    dst, env = mlflow_project
    py = py_of(dst)
    # Both runs also register their model: versions 1 and 2 of the package's registered model.
    register = "tracking.register_model=true"
    first = ["data=digits", "trainer.epochs=2", "trainer.learning_rate=0.01", register]
    out = run_ok(
        "tracking: train run 1 (mlflow)", [py, "-m", f"{PKG}.train", *first], dst, env
    ).stdout
    assert "epoch   2/2" in out and "MLflow run" in out
    run_ok(
        "tracking: make train run 2 (mlflow)",
        ["make", "train", "DATASET=digits", "EPOCHS=3", f"ARGS=trainer.batch_size=64 {register}"],
        dst,
        env,
    )
    # The evaluation of the latest model (run 2's) goes to run 2 itself, not to a run of its own.
    run_ok("tracking: make evaluate (mlflow)", ["make", "evaluate", "DATASET=digits"], dst, env)
    runs = read_store(py, dst, env, "sqlite:///mlflow.db")
    assert len(runs) == 2, runs
    one, two = runs
    assert not any(k.startswith("eval_") for k in one["metrics"]) and one["evaluation"] == []
    evaluation = json.loads((dst / "models" / "digits_evaluation.json").read_text())
    assert (
        two["metrics"]["eval_accuracy"] == evaluation["accuracy"] == two["metrics"]["test_accuracy"]
    )
    assert two["metrics"]["eval_n_test"] == 450 and "eval_recall_9" in two["metrics"]
    assert two["evaluation"] == [
        "evaluation/digits_confusion_matrix.png",
        "evaluation/digits_evaluation.json",
    ]
    assert (one["params"]["trainer.epochs"], one["params"]["trainer.learning_rate"]) == (
        "2",
        "0.01",
    )
    assert (two["params"]["trainer.epochs"], two["params"]["trainer.batch_size"]) == ("3", "64")
    assert one["params"]["data.name"] == two["params"]["data.name"] == "digits"
    assert (one["loss_steps"], two["loss_steps"]) == ([1, 2], [1, 2, 3])  # metrics per epoch
    lock = hashlib.sha256((dst / "uv.lock").read_bytes()).hexdigest()
    for run in runs:
        assert run["status"] == "FINISHED"
        assert run["tags"] == {"lock_file": "uv.lock", "lock_sha256": lock}
        # MLflow 3 keeps the model as a logged model of the run (runs:/<id>/model), not a file
        assert {"config.yaml", "confusion_matrix.png"} <= set(run["artifacts"])
        assert 0.5 < run["metrics"]["test_accuracy"] <= 1.0
    # Two run folders (never overwritten); the second run's model also is models/'s latest.
    folders = sorted((dst / "runs").iterdir())
    assert len(folders) == 2 and all(f.name.endswith("_digits") for f in folders)
    out = run_ok(
        "read the registry", [py, "-c", READ_REGISTRY, "sqlite:///mlflow.db"], dst, env
    ).stdout
    versions = json.loads(out.split("VERSIONS ", 1)[1])
    assert versions == [[1, one["id"]], [2, two["id"]]]  # one version per run, in order
    pairs = []
    for version, (folder, run) in enumerate(zip(folders, runs, strict=True), start=1):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["tracking_run"] == run["id"]
        saved = str(folder / "digits_sklearn.joblib")
        pairs += [f"runs:/{run['id']}/model", saved, f"models:/{PKG}/{version}", saved]
    out = run_ok("load models", [py, "-c", SAME_PREDICTIONS, *pairs], dst, env).stdout
    assert out.splitlines() == ["SAME True 450"] * 4, (pairs, out)
    log = (folders[1] / "train.log").read_text()
    assert "epoch   3/3" in log and " INFO " in log
    assert "epochs: 3" in (folders[1] / "config.yaml").read_text()


@pytest.mark.slow
@posix_only("process groups")
def test_a_real_mlflow_server_records_a_run_read_back_over_rest(
    mlflow_project: tuple[Path, dict], tmp_path: Path
) -> None:
    dst, env = mlflow_project
    port = free_port()
    server_cmd = [
        str(dst / ".venv" / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "server-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    uri = f"http://127.0.0.1:{port}"
    with started(server_cmd, cwd=tmp_path, env=env) as server:
        t0 = time.monotonic()
        assert wait_for_http(f"{uri}/health", server) == 200
        TIMES["tracking: mlflow server start"] = time.monotonic() - t0
        run_env = {**env, "MLFLOW_TRACKING_URI": uri}
        overrides = ["data=digits", "trainer.epochs=2", "runs_dir=server-runs"]
        out = run_ok(
            "train to server", [py_of(dst), "-m", f"{PKG}.train", *overrides], dst, run_env
        ).stdout
        assert uri in out
        request = urllib.request.Request(
            f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=digit-lab"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            experiment = json.load(response)["experiment"]
        body = json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode()
        request = urllib.request.Request(
            f"{uri}/api/2.0/mlflow/runs/search",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            (run,) = json.load(response)["runs"]
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert params["trainer.epochs"] == "2" and params["tracking.backend"] == "mlflow"
        assert run["info"]["status"] == "FINISHED" and 0.5 < metrics["test_accuracy"] <= 1
        history = f"{uri}/api/2.0/mlflow/metrics/get-history?run_id={run['info']['run_id']}&metric_key=loss"
        with urllib.request.urlopen(history, timeout=10) as response:
            assert [m["step"] for m in json.load(response)["metrics"]] == [1, 2]
        # The artifacts went through the server into its artifact store.
        assert list((tmp_path / "server-artifacts").rglob("confusion_matrix.png"))
        assert list((tmp_path / "server-artifacts").rglob("MLmodel"))


@pytest.mark.slow
@posix_only("make and process groups")
def test_make_ui_answers_on_localhost(mlflow_project: tuple[Path, dict]) -> None:
    """`make ui` serves the project's own store: an experiment made in it is listed."""
    dst, env = mlflow_project
    mark = f"ui-check-{os.getpid()}"
    make = "import mlflow, sys; mlflow.set_tracking_uri('sqlite:///mlflow.db'); "
    make += "mlflow.create_experiment(sys.argv[1])"
    run_ok("tracking: an experiment in the store", [py_of(dst), "-c", make, mark], dst, env)
    port = free_port()
    with started(["make", "ui", f"UI_PORT={port}"], cwd=dst, env=env) as ui:
        assert wait_for_http(f"http://127.0.0.1:{port}/", ui) == 200
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=100",
            timeout=10,
        ) as response:
            names = {e["name"] for e in json.load(response)["experiments"]}
        assert mark in names, names


@pytest.mark.slow
def test_an_unreachable_server_fails_fast_with_the_fix(mlflow_project: tuple[Path, dict]) -> None:
    dst, env = mlflow_project
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    before = set((dst / "runs").iterdir()) if (dst / "runs").exists() else set()

    def run_step(module: str) -> subprocess.CompletedProcess[str]:
        cmd = [py_of(dst), "-m", f"{PKG}.{module}", "data=digits"]
        env_uri = {**env, "MLFLOW_TRACKING_URI": uri}
        proc = subprocess.run(
            cmd, cwd=dst, env=env_uri, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc

    started = time.monotonic()
    result = run_step("train")
    seconds = time.monotonic() - started
    (line,) = result.stderr.strip().splitlines()
    assert uri in line and "unreachable" in line and "unset MLFLOW_TRACKING_URI" in line, line
    assert "Traceback" not in result.stderr and "epoch" not in result.stdout
    after = set((dst / "runs").iterdir()) if (dst / "runs").exists() else set()
    assert after == before  # reported before anything is written
    TIMES["tracking: unreachable server reported"] = seconds
    # Evaluation reports to the same server: the same line, before it evaluates anything.
    result = run_step("evaluate")
    (again,) = result.stderr.strip().splitlines()
    assert again == line and "accuracy" not in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["trainer.epocs=3"], "unknown key 'trainer.epocs' in trainer (allowed: epochs"),
        (["trainer.epochs=ten"], "trainer.epochs=ten: an integer expected"),
        (["data=imagenet"], "no data config named 'imagenet'; choose one of digits, mnist"),
        (["tracking=wandb"], "no tracking config named 'wandb'; choose one of mlflow, none"),
    ],
)
def test_a_wrong_override_is_one_line_without_traceback(
    mlflow_project: tuple[Path, dict], args: list[str], says: str
) -> None:
    dst, env = mlflow_project
    result = subprocess.run(
        [py_of(dst), "-m", f"{PKG}.train", *args],
        cwd=dst,
        env={k: v for k, v in env.items() if k != "HYDRA_FULL_ERROR"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line, result.stderr


@pytest.mark.slow
@posix_only("make")
def test_make_train_dataset_maps_to_the_data_group(mlflow_project: tuple[Path, dict]) -> None:
    dst, env = mlflow_project
    result = subprocess.run(
        ["make", "train", "DATASET=cifar"], cwd=dst, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "data=cifar: no data config named 'cifar'; choose one of digits, mnist" in result.stderr


@pytest.mark.slow
def test_the_generated_project_passes_its_own_checks(mlflow_project: tuple[Path, dict]) -> None:
    dst, env = mlflow_project
    uv = [UV, "run", "--frozen"]
    run_ok("tracking: project ruff", [*uv, "ruff", "check", "."], dst, env)
    run_ok("tracking: project ruff format", [*uv, "ruff", "format", "--check", "."], dst, env)
    out = run_ok("tracking: project mypy", [*uv, "mypy"], dst, env).stdout
    assert "Success: no issues found" in out
    out = run_ok(
        "tracking: project pytest", [*uv, "pytest", "-q", "-p", "no:cacheprovider"], dst, env
    ).stdout
    last = out.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "error" not in last, out[-3000:]


# ---------------------------------------------------------------- W&B offline


class Listener:
    """A TCP port on 127.0.0.1 that records every connection: the proxy and W&B server of a
    run that must not use the network, so any attempt shows up here."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            conn.settimeout(3)
            try:
                self.requests.append(conn.recv(300))
            except OSError:
                self.requests.append(b"(connected)")
            conn.close()


@pytest.mark.slow
def test_wandb_offline_writes_the_run_locally_without_network(
    template: Path, tmp_path: Path
) -> None:
    python = find_python("3.11") or pytest.skip("no Python 3.11 on this machine")
    answers = {"env_manager": "uv", "ml_framework": "sklearn", "experiment_tracking": "wandb"}
    dst = digit_lab(template, tmp_path / "p", **answers)
    bin_dir = tool_bin(Path(tempfile.gettempdir()) / "copier-mlops-tracking", "uv")
    env = env_without_dev_venv(bin_dir, UV_PYTHON=python, MPLBACKEND="Agg")
    run_ok("tracking: uv sync (sklearn + wandb + hydra)", [UV, "sync"], dst, env)
    listener = Listener()
    home = tmp_path / "home"  # no `wandb login` here: no netrc, no API key
    home.mkdir()
    run_env = {k: v for k, v in env.items() if not k.startswith("WANDB_")}
    run_env.update(
        HOME=str(home),
        HTTP_PROXY=listener.url,
        HTTPS_PROXY=listener.url,
        NO_PROXY="",
        WANDB_BASE_URL=listener.url,
    )
    try:
        cmd = [py_of(dst), "-m", f"{PKG}.train", "data=digits", "trainer.epochs=2"]
        out = run_ok("tracking: train with W&B offline", cmd, dst, run_env).stdout
        cmd = [py_of(dst), "-m", f"{PKG}.evaluate", "data=digits"]
        run_ok("tracking: evaluate with W&B offline", cmd, dst, run_env)
    finally:
        listener.sock.close()
    assert listener.requests == []  # not one connection attempt
    assert "offline; upload later with `wandb sync --sync-all`" in out
    (folder,) = (dst / "runs").iterdir()
    train_id = json.loads((folder / "metrics.json").read_text())["tracking_run"]
    (run,) = (dst / "wandb").glob(f"offline-run-*-{train_id}")
    # The evaluation is a run of its own, of job type "evaluate", naming the training run.
    (evaluation,) = set((dst / "wandb").glob("offline-run-*")) - {run}
    (eval_records,) = evaluation.glob("run-*.wandb")
    data = eval_records.read_bytes()
    for needle in ("eval_accuracy", "eval_f1_9", "training_run", train_id, "evaluate"):
        assert needle.encode() in data, needle
    assert list((evaluation / "files" / "media" / "images").glob("digits_confusion_matrix_*.png"))
    # The run's records, which `wandb sync` uploads: config keys, metrics, the lock's hash (as
    # JSON values in protobuf records), and the figure beside them.
    (records,) = run.glob("run-*.wandb")
    data = records.read_bytes()
    lock = hashlib.sha256((dst / "uv.lock").read_bytes()).hexdigest()
    for needle in ("trainer.epochs", "data.name", "val_accuracy", "test_accuracy", lock):
        assert needle.encode() in data, needle
    assert list((run / "files" / "media" / "images").glob("confusion_matrix_*.png"))
    assert "epoch   2/2" in (folder / "train.log").read_text()
    # The W&B variant of the code passes the project's own checks too.
    uv = [UV, "run", "--frozen"]
    run_ok("tracking: W&B project ruff", [*uv, "ruff", "check", "."], dst, env)
    out = run_ok("tracking: W&B project mypy", [*uv, "mypy"], dst, env).stdout
    assert "Success: no issues found" in out
    # and its own tracking tests (training, then the evaluation's linked run), offline as above
    cmd = [
        py_of(dst),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"tests/test_{PKG}_tracking.py",
    ]
    listener = Listener()
    proxied = {
        "HTTP_PROXY": listener.url,
        "HTTPS_PROXY": listener.url,
        "WANDB_BASE_URL": listener.url,
    }
    try:
        out = run_ok(
            "tracking: W&B project tracking tests", cmd, dst, {**run_env, **proxied}
        ).stdout
    finally:
        listener.sock.close()
    assert listener.requests == []
    last = out.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "error" not in last, out[-3000:]


@pytest.mark.slow
def test_sklearn_skeleton_tests_pass(mlflow_project: tuple[Path, dict], template: Path) -> None:
    """example=none with scikit-learn and MLflow: the skeleton's own tests pass and it type-checks,
    in the MLflow project's environment (the same packages), its src/ first on the path."""
    env_project, env = mlflow_project
    dst, run_env = skeleton_tests_pass(template, env_project, env, "sklearn")
    py = py_of(env_project)
    out = run_ok("tracking: sklearn skeleton mypy", [py, "-m", "mypy"], dst, run_env).stdout
    assert "Success: no issues found" in out
