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

import base64
import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
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
    run_captured,
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
        "val_steps": [m.step for m in client.get_metric_history(rid, "val_accuracy")],
        "data": [(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs],
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

# The model registry's versions of the package's model: [[version, run id], ...], and the
# version the alias champion names.
READ_REGISTRY = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
versions = client.search_model_versions("name = 'digit_lab'")
print("VERSIONS " + json.dumps(sorted([int(v.version), v.run_id] for v in versions)))
print("CHAMPION", client.get_model_version_by_alias("digit_lab", "champion").version)
"""


def read_registry(py: str, dst: Path, env: dict[str, str]) -> tuple[list[list[Any]], int]:
    out = run_ok("read the registry", [py, "-c", READ_REGISTRY, "sqlite:///mlflow.db"], dst, env)
    versions = json.loads(out.stdout.split("VERSIONS ", 1)[1].splitlines()[0])
    return versions, int(out.stdout.split("CHAMPION ", 1)[1].strip())


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
@posix_only("make and process groups")
def test_runs_record_their_contract_and_promote_gates_the_champion_alias(
    mlflow_project: tuple[Path, dict],
) -> None:
    """Three runs: each records one val_accuracy per epoch (steps 1..n, no final value at step
    0), its data set's digest, its overrides and commit; `make promote` puts @champion on run 1,
    keeps it there after the worse run 2, moves it to run 3; `make serve` with the alias serves
    version 3; every logged or registered model predicts like the file training saved."""
    dst, env = mlflow_project
    py = py_of(dst)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    run_ok("tracking: git init", [*git, "init", "-q"], dst, env)
    run_ok("tracking: git add", [*git, "add", "-A"], dst, env)
    run_ok("tracking: git commit", [*git, "commit", "-qm", "start"], dst, env)
    head = run_ok("git head", ["git", "rev-parse", "HEAD"], dst, env).stdout.strip()
    promote = ["make", "promote", "DATASET=digits"]
    # Runs 1 and 2 register their model as they train (versions 1 and 2); promote registers 3.
    register = "tracking.register_model=true"
    first = ["data=digits", "trainer.epochs=2", "trainer.learning_rate=0.001", register]
    proc = run_ok("tracking: train run 1 (mlflow)", [py, "-m", f"{PKG}.train", *first], dst, env)
    out = proc.stdout
    assert "epoch   2/2" in out and "MLflow run" in out
    # uv's environment has no pip: MLflow's warning about it is noise a student reads as a fault
    assert "WARNING" not in proc.stdout + proc.stderr, proc.stderr
    said = run_ok("tracking: make promote 1", promote, dst, env).stdout
    assert "promoted: models:/digit_lab@champion -> version 1" in said, said
    readme = dst / "README.md"
    readme.write_text(readme.read_text() + "\nan uncommitted edit\n")  # run 2: a dirty tree
    worse = "ARGS=trainer.batch_size=64 trainer.learning_rate=0.00001 " + register
    run_ok(
        "tracking: make train run 2 (mlflow)",
        ["make", "train", "DATASET=digits", "EPOCHS=1", worse],
        dst,
        env,
    )
    said = run_ok("tracking: make promote 2", promote, dst, env).stdout
    assert "not promoted: models:/digit_lab@champion stays on version 1" in said, said
    assert "does not beat the champion's" in said, said
    # The evaluation of the latest model (run 2's) goes to run 2 itself, not to a run of its own.
    run_ok("tracking: make evaluate (mlflow)", ["make", "evaluate", "DATASET=digits"], dst, env)
    run_ok("tracking: git checkout", ["git", "checkout", "README.md"], dst, env)
    run_ok("tracking: make train run 3", ["make", "train", "DATASET=digits"], dst, env)
    said = run_ok("tracking: make promote 3", promote, dst, env).stdout
    assert "promoted: models:/digit_lab@champion -> version 3" in said, said

    runs = read_store(py, dst, env, "sqlite:///mlflow.db")
    assert len(runs) == 3, runs
    one, two, three = runs
    assert not any(k.startswith("eval_") for k in one["metrics"]) and one["evaluation"] == []
    evaluation = json.loads((dst / "models" / "digits_evaluation.json").read_text())
    assert two["metrics"]["eval_accuracy"] == evaluation["accuracy"]
    assert two["metrics"]["eval_n_test"] == 450 and "eval_recall_9" in two["metrics"]
    assert two["evaluation"] == [
        "evaluation/digits_confusion_matrix.png",
        "evaluation/digits_evaluation.json",
    ]
    assert (one["params"]["trainer.epochs"], one["params"]["trainer.learning_rate"]) == (
        "2",
        "0.001",
    )
    assert (two["params"]["trainer.epochs"], two["params"]["trainer.batch_size"]) == ("1", "64")
    assert one["params"]["data.name"] == two["params"]["data.name"] == "digits"
    # One point per epoch, in order, no final value logged at step 0 (or at any other step).
    assert (one["loss_steps"], two["loss_steps"]) == ([1, 2], [1])
    assert (one["val_steps"], two["val_steps"], three["val_steps"]) == (
        [1, 2],
        [1],
        list(range(1, 31)),
    )
    assert two["tags"]["overrides"] == (
        "data=digits trainer.epochs=1 trainer.batch_size=64 trainer.learning_rate=0.00001 "
        + register
    )
    assert [run["tags"]["git_dirty"] for run in runs] == ["false", "true", "false"]
    lock = hashlib.sha256((dst / "uv.lock").read_bytes()).hexdigest()
    folders = sorted((dst / "runs").iterdir())
    assert len(folders) == 3 and all(f.name.endswith("_digits") for f in folders)
    for run, folder in zip(runs, folders, strict=True):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["tracking_run"] == run["id"] and run["status"] == "FINISHED"
        assert run["tags"]["lock_file"] == "uv.lock" and run["tags"]["lock_sha256"] == lock
        assert run["tags"]["git_commit"] == head
        assert run["data"] == [["digits", metrics["data_digest"]]]
        assert {"config.yaml", "MODEL_CARD.md"} <= set(run["artifacts"])
        assert "test_accuracy" not in run["metrics"]  # the test images are evaluate's
        assert run["metrics"]["best_val_accuracy"] == metrics["best_val_accuracy"]
        card = (folder / "MODEL_CARD.md").read_text()
        assert f"commit: {head}" in card and metrics["data_digest"] in card
    assert "with uncommitted changes" in (folders[1] / "MODEL_CARD.md").read_text()
    assert three["metrics"]["best_val_accuracy"] > 0.9 > two["metrics"]["best_val_accuracy"]
    versions, champion = read_registry(py, dst, env)
    assert versions == [[1, one["id"]], [2, two["id"]], [3, three["id"]]] and champion == 3
    pairs = []
    for version, (folder, run) in enumerate(zip(folders, runs, strict=True), start=1):
        saved = str(folder / "digits_sklearn.joblib")
        pairs += [f"runs:/{run['id']}/model", saved, f"models:/{PKG}/{version}", saved]
    out = run_ok("load models", [py, "-c", SAME_PREDICTIONS, *pairs], dst, env).stdout
    assert out.splitlines() == ["SAME True 450"] * 6, (pairs, out)
    log = (folders[1] / "train.log").read_text()
    assert "epoch   1/1" in log and " INFO " in log
    assert "epochs: 1" in (folders[1] / "config.yaml").read_text()

    port = free_port()
    serve = ["make", "serve", f"PORT={port}", f"MODEL_URI=models:/{PKG}@champion"]
    with started(serve, cwd=dst, env=env) as server:
        assert wait_for_http(f"http://127.0.0.1:{port}/health", server) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=10) as response:
            metadata = json.load(response)
    assert metadata["model"] == f"models:/{PKG}@champion"
    assert metadata["registered_version"] == f"{PKG}/3" and metadata["run_id"] == three["id"]
    assert metadata["metrics"]["best_val_accuracy"] == three["metrics"]["best_val_accuracy"]


class HostProxy:
    """An HTTP proxy on 127.0.0.1 that sends every request to 127.0.0.1:`port` with the Host
    header the client wrote: a server reached by another name, without /etc/hosts."""

    def __init__(self, port: int) -> None:
        self.hosts: list[str] = []
        hosts = self.hosts

        class Relay(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def relay(self) -> None:
                hosts.append(self.headers.get("Host", ""))
                target = urllib.parse.urlsplit(self.path)  # absolute-form: http://name:port/...
                path = (target.path or "/") + (f"?{target.query}" if target.query else "")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                try:
                    upstream.request(self.command, path, body=body, headers=dict(self.headers))
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
@posix_only("process groups")
def test_the_readme_team_server_with_basic_auth_and_allowed_hosts_records_a_run(
    mlflow_project: tuple[Path, dict], tmp_path: Path
) -> None:
    """README.md's team server for real: `mlflow server --app-name basic-auth --allowed-hosts
    <name>:<port>` (mlflow[auth], in a venv of its own, as on a server) on 127.0.0.1, reached by
    that name through a proxy. A wrong password, and the server's own address (not allowed),
    are one clear line before any run folder; the right one records a run, its metrics per
    epoch, and its artifacts stored by the server (proxied), read back over REST."""
    dst, env = mlflow_project
    py = py_of(dst)
    version = run_ok(
        "mlflow version", [py, "-c", "import mlflow; print(mlflow.__version__)"], dst, env
    ).stdout.strip()
    server_venv = tmp_path / "server-venv"
    run_ok("tracking: server venv", [UV, "venv", "-q", str(server_venv)], tmp_path, env)
    install = [UV, "pip", "install", "-q", "--python", str(server_venv / "bin" / "python")]
    run_ok("tracking: mlflow[auth]", [*install, f"mlflow[auth]=={version}"], tmp_path, env)
    port = free_port()
    name = f"mlflow.team.test:{port}"  # no such host: only the proxy knows where it is
    password = "team-Secret-42"
    server_env = {
        **env,
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only",
    }
    server_cmd = [
        str(server_venv / "bin" / "mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--allowed-hosts",
        name,
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
    proxy = HostProxy(port)
    uri = f"http://{name}"
    user = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": password}
    run_env = {**env, **user, "MLFLOW_TRACKING_URI": uri, "HTTP_PROXY": proxy.url, "NO_PROXY": ""}
    overrides = ["data=digits", "trainer.epochs=2", "runs_dir=server-runs"]
    train = [py, "-m", f"{PKG}.train", *overrides]
    try:
        with started(server_cmd, cwd=tmp_path, env=server_env) as server:
            t0 = time.monotonic()
            assert wait_for_http(f"http://127.0.0.1:{port}/health", server) == 200
            TIMES["tracking: mlflow server (basic-auth) start"] = time.monotonic() - t0
            refused = [
                ({**run_env, "MLFLOW_TRACKING_PASSWORD": "wrong"}, "refused the password of"),
                (  # the server's own address is not in --allowed-hosts
                    {**run_env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"},
                    f"start the server with --allowed-hosts 127.0.0.1:{port}",
                ),
            ]
            for bad_env, says in refused:
                result = run_captured(train, dst, bad_env)
                assert result.returncode == 1, result.stdout + result.stderr
                (line,) = result.stderr.strip().splitlines()
                assert line.startswith("error: ") and says in line, line
                assert password not in line and "wrong" not in line
                assert "epoch" not in result.stdout and not (dst / "server-runs").exists()
            proxy.hosts.clear()
            out = run_ok("train to the team server", train, dst, run_env).stdout
            assert uri in out
            assert set(proxy.hosts) == {name}  # every request went to the server by that name

            auth = base64.b64encode(f"admin:{password}".encode()).decode()
            headers = {"Host": name, "Authorization": f"Basic {auth}"}

            def api(path: str, body: dict[str, Any] | None = None) -> Any:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}",
                    data=json.dumps(body).encode() if body is not None else None,
                    headers={**headers, "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)

            experiment = api("experiments/get-by-name?experiment_name=digit-lab")["experiment"]
            (run,) = api("runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            assert params["trainer.epochs"] == "2" and params["tracking.backend"] == "mlflow"
            assert run["info"]["status"] == "FINISHED" and 0.5 < metrics["best_val_accuracy"] <= 1
            history = api(
                f"metrics/get-history?run_id={run['info']['run_id']}&metric_key=val_accuracy"
            )
            assert [m["step"] for m in history["metrics"]] == [1, 2]
    finally:
        proxy.close()
    # The artifacts went through the server into its artifact store.
    assert list((tmp_path / "server-artifacts").rglob("MODEL_CARD.md"))
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


# The project's own ruff, mypy and pytest with MLflow (its default tracking) run in test_mnist's
# uv project (`make lint`, the whole suite): the same answers, on Python 3.13.


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


# W&B's run files (run-*.wandb) are LevelDB logs: 32 KiB blocks of chunks, each with a 7-byte
# header (checksum, length, type: 1 full, 2 first, 3 middle, 4 last), after W&B's 7-byte header.
# Read in the project's environment, with wandb's own protobuf; prints each artifact record.
WANDB_ARTIFACTS = """
import json, struct, sys
from wandb.proto import wandb_internal_pb2
data = open(sys.argv[1], "rb").read()
assert data[:4] == b":W&B", data[:7]
pos, pending, out = 7, b"", []
while pos + 7 <= len(data):
    room = 32768 - pos % 32768
    length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
    if room < 7 or (kind == 0 and length == 0):
        pos += room
        continue
    chunk = data[pos + 7 : pos + 7 + length]
    pos += 7 + length
    pending = chunk if kind in (1, 2) else pending + chunk
    if kind in (1, 4):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        if record.WhichOneof("record_type") == "artifact":
            a = record.artifact
            out.append([a.name, a.type, a.digest, a.use_after_commit])
print("ARTIFACTS " + json.dumps(out))
"""


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
    for needle in ("trainer.epochs", "data.name", "val_accuracy", "best_val_accuracy", lock):
        assert needle.encode() in data, needle
    assert "epoch   2/2" in (folder / "train.log").read_text()
    # Lineage: the training run logs the model as an artifact named after dataset and framework;
    # the evaluation uses that artifact (the same digest), which `wandb sync` records as used.
    artifacts = {}
    for name, path in (("train", records), ("evaluate", eval_records)):
        out = run_ok(
            f"W&B {name} artifacts", [py_of(dst), "-c", WANDB_ARTIFACTS, str(path)], dst, env
        )
        artifacts[name] = json.loads(out.stdout.split("ARTIFACTS ", 1)[1])
    ((name, kind, digest, used),) = artifacts["train"]
    assert (name, kind, used) == ("digits_sklearn", "model", False)
    assert artifacts["evaluate"] == [["digits_sklearn", "model", digest, True]]
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
