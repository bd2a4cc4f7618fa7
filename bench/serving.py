#!/usr/bin/env python3
"""Serving latency: the generated project's API under a bounded concurrent load, beside the
in-process predict time (the floor), for single-image and batch requests.

    .venv/bin/python -m bench.serving --project PATH [PATH...] [--quick] [--out docs/benchmarks.md]

Each PATH is a generated project (serving=fastapi) with its .venv and a trained model (`make train
DATASET=digits`). The server is started as `make serve` starts it (uvicorn, WORKERS processes) on
a free loopback port and stopped (its whole process group) at the end. The load itself runs in the
project's Python (bench/serving_load.py: an async httpx client). The results replace the
"Serving latency" section of the output file (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from devsupport import exit_on_sigterm, free_port, started, wait_for_http

ROOT = Path(__file__).resolve().parents[1]

START, END = "<!-- serving-bench:start -->", "<!-- serving-bench:end -->"


def package_of(project: Path) -> str:
    """The project's package_name, read from its copier answers file."""
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    return next(
        line.split(":", 1)[1].strip()
        for line in answers.splitlines()
        if line.startswith("package_name:")
    )


def run_bench(
    project: Path, workers: int, concurrency: int, load_args: list[str]
) -> dict[str, Any]:
    """Serve `project` with `workers` and load it with serving_load.py; the results as a dict."""
    python = project / ".venv" / "bin" / "python"
    package = package_of(project)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    uvicorn = [str(python), "-m", "uvicorn", "--host", "127.0.0.1", "--workers", str(workers)]
    uvicorn += ["--log-level", "warning"]
    server = [*uvicorn, f"{package}.api:app", "--port", str(port)]
    # The framework's floor: a bare route (bench/bare_app.py) on the same uvicorn and workers.
    bare_port = free_port()
    bare = [*uvicorn, "--app-dir", str(ROOT / "bench"), "bare_app:app", "--port", str(bare_port)]
    bare_url = f"http://127.0.0.1:{bare_port}"
    with started(server, cwd=project) as running, started(bare, cwd=project) as bare_running:
        if wait_for_http(f"{url}/health", running, timeout=60) != 200:
            raise SystemExit(f"{url}/health does not answer 200: is a model trained?")
        if wait_for_http(f"{bare_url}/docs", bare_running, timeout=60) != 200:
            raise SystemExit(f"the bare route's server ({bare_url}) did not start")
        load = [str(python), str(ROOT / "bench" / "serving_load.py"), "--url", url]
        load += ["--bare-url", bare_url]
        out = subprocess.run(
            [*load, "--package", package, "--concurrency", str(concurrency), *load_args],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"serving_load.py failed:\n{out.stdout}\n{out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        result["workers"], result["concurrency"] = workers, concurrency
        return result


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals, for the table."""
    return f"{seconds * 1000:.2f}"


def section(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The marked "Serving latency" section: how it was measured, a row per result and request."""
    lines = [
        START,
        "## Serving latency (bench/serving.py)",
        "",
        f"Measured {datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.platform()}, "
        f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(other work shares this machine). Load: concurrent clients "
        f"(async httpx, keep-alive; each waits for its answer), at most {args.requests} requests or "
        f"{args.seconds:.0f} s per row, client and server on the same machine. In-process: "
        "`predict_proba()` on the same images, no HTTP (the model's floor; for PNG files, each "
        "image enlarged smoothly to the page's 280x280 canvas, their conversion too). Bare "
        "route (JSON only): the same "
        "requests and load on one FastAPI route that parses the body and answers a constant "
        "(bench/bare_app.py), served by the same uvicorn with the same workers (the framework's "
        "floor). Overhead = HTTP p50 / in-process p50.",
        "",
        "| model | request | workers | clients | requests/s | HTTP p50 ms | HTTP p99 ms "
        "| bare route p50 ms | in-process p50 ms | overhead (x) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for name in ("single", "batch", "single_png", "batch_png"):
            if name not in result:
                continue
            r = result[name]
            http, floor = r["http"], r["in_process"]
            label = f"{name.split('_')[0]} ({r['images']} image{'s' if r['images'] > 1 else ''}, "
            label += f"{r['body_bytes'] / 1024:.1f} KiB {r.get('kind', 'JSON')})"
            ratio = http["p50_s"] / floor["p50_s"] if floor["p50_s"] else float("nan")
            bare = ms(r["bare"]["p50_s"]) if "bare" in r else "-"
            lines.append(
                f"| {result['metadata']['framework']}, {result['metadata']['dataset']} "
                f"| {label} | {result['workers']} | {result['concurrency']} "
                f"| {http['rps']:.0f} | {ms(http['p50_s'])} "
                f"| {ms(http['p99_s'])} | {bare} | {ms(floor['p50_s'])} | {ratio:.1f} "
                f"| {http['errors'] or 'none'} |"
            )
    lines += ["", *per_image(results), END]
    return "\n".join(lines) + "\n"


def per_image(results: list[dict[str, Any]]) -> list[str]:
    """What an image costs over HTTP in a batch and in single requests, row by row, from the
    measured requests/s (1 / (requests/s x images)), and the verdict those numbers support; no
    lines when no row has successful requests of both kinds."""
    costs, verdicts = [], []
    for result in results:
        single, batch = result["single"], result["batch"]
        if not (single["http"]["rps"] > 0 and batch["http"]["rps"] > 0):
            continue  # nothing served: no cost to state
        alone = 1 / (single["http"]["rps"] * single["images"])
        grouped = 1 / (batch["http"]["rps"] * batch["images"])
        workers = f"{result['workers']} worker{'s' if result['workers'] > 1 else ''}"
        costs.append(
            f"{result['metadata']['framework']}, {result['metadata']['dataset']}, {workers}, "
            f"{result['concurrency']} clients: {grouped * 1000:.3g} ms in a batch of "
            f"{batch['images']}, {alone * 1000:.3g} ms alone"
        )
        verdicts.append(alone / grouped)
    if not costs:
        return []
    cheaper = [v for v in verdicts if v > 1]
    if len(cheaper) == len(verdicts):
        low, high = min(verdicts), max(verdicts)
        span = f"{low:.1f}x" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}x to {high:.1f}x"
        verdict = (
            f"Per image, a batch is {span} cheaper than single requests here: the HTTP, JSON "
            "and thread hand-off overhead is paid once per request."
        )
    elif cheaper:
        verdict = f"Per image, a batch costs less than single requests in {len(cheaper)} of "
        verdict += f"{len(verdicts)} rows only."
    else:
        verdict = "Per image, a batch costs no less than single requests here."
    return [
        "Per image served (1 / (requests/s x images)): " + "; ".join(costs) + ".",
        "",
        verdict,
    ]


def write_section(out: Path, text: str) -> None:
    """Put `text` in `out` in place of its marked section (appended when there is none)."""
    doc = out.read_text(encoding="utf-8") if out.exists() else ""
    if START in doc and END in doc:
        head, rest = doc.split(START, 1)
        doc = head + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + ("\n\n" if doc else "") + text
    out.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Parse the options, bench every project x workers x clients, write and print the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200, help="in-process timings per row")
    parser.add_argument(
        "--quick", action="store_true", help="200 requests or 5 s a row, 1 worker, 4 clients"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.quick:
        args.requests, args.seconds, args.workers, args.concurrency = 200, 5.0, [1], [4]
    load_args = ["--requests", str(args.requests)]
    load_args += ["--seconds", str(args.seconds), "--batch", str(args.batch)]
    load_args += ["--repeats", "20" if args.quick else str(args.repeats)]
    results = [
        run_bench(project.resolve(), w, c, load_args)
        for project in args.project
        for w in args.workers
        for c in args.concurrency
    ]
    text = section(results, args)
    write_section(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
