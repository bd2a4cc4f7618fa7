"""Load generator for bench/serving.py, run by the *generated project's* Python (its venv has the
package, its model and httpx): prints one JSON object with the in-process floor and the HTTP load.

    <project>/.venv/bin/python bench/serving_load.py --url http://127.0.0.1:PORT --package NAME

In-process: api.load() then predict_proba() on one image and on a batch, timed directly (the
floor: what the model itself costs; for PNG uploads, api.image_from_upload's conversion too).
With `--bare-url`, the same JSON load on bench/bare_app.py's bare route (the framework's own
floor). Over HTTP: `--concurrency` workers share a bounded number of
requests (`--requests`) and a time budget (`--seconds`), each waiting for its answer before the
next (a closed loop: at most `--concurrency` requests are in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import statistics
import time
from typing import Any

import numpy as np

try:  # starlette's choice of client now; httpx where it is not installed
    import httpx2 as httpx
except ImportError:
    import httpx  # type: ignore[no-redef]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (NaN when there are none)."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def in_process(
    package: str, images: np.ndarray[Any, Any], repeats: int, pngs: list[bytes] | None = None
) -> dict[str, float]:
    """p50 and p99 seconds of predict_proba on these images (after converting `pngs` into them,
    when given) over `repeats` calls (after one warm-up call), the model loaded as the server
    does."""
    api = importlib.import_module(f"{package}.api")
    data = importlib.import_module(f"{package}.data")
    loaded = api.load(api.Settings.from_environment())
    if loaded.model is None:
        raise SystemExit(loaded.error)

    def once() -> None:
        found = images
        if pngs is not None:
            found = np.stack([api.image_from_upload(png, loaded.dataset) for png in pngs])
        api.predict_proba(loaded.model, data.to_features(found))

    once()  # warm-up (first-call set-up in torch/keras)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return {"p50_s": statistics.median(times), "p99_s": percentile(times, 99)}


async def load(
    url: str, body: dict[str, Any], *, requests: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    """POST /predict with `body` (httpx's json= or files=) from `concurrency` workers within the
    budgets; counts, rate and latencies."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    remaining = requests
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await client.post("/predict", **body)  # warm-up, not counted

        async def worker() -> None:
            """Send requests one by one until the count or time is up; record latency or error."""
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/predict", **body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[status] = errors.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "ok": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "rps": len(latencies) / wall if wall else 0.0,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
    }


# What is measured: (name, images per request (None: --batch), how they are sent). PNG: each
# image drawn on a 280x280 canvas as the page sends it (its whole conversion path is measured).
KINDS = (("single", 1, "JSON"), ("batch", None, "JSON"), ("single_png", 1, "PNG"),
         ("batch_png", None, "PNG"))  # fmt: skip


def canvas_png(image: np.ndarray[Any, Any]) -> bytes:
    """`image` enlarged smoothly to the page's 280x280 canvas, as a PNG (dark ink on white)."""
    from PIL import Image

    big = Image.fromarray(255 - image).resize((280, 280), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    """Time single and batch requests, in process and over HTTP; print the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--bare-url", help="a bare FastAPI route's server (bench/bare_app.py)")
    args = parser.parse_args()
    meta = httpx.get(f"{args.url}/metadata", timeout=10).json()
    h, w = meta["image_shape"]
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"metadata": {k: meta[k] for k in ("framework", "dataset")}}
    for name, n, kind in KINDS:
        n = args.batch if n is None else n
        images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
        pngs = [canvas_png(image) for image in images] if kind == "PNG" else None
        body: dict[str, Any] = {"json": {"images": images.tolist()}}
        if pngs is not None:
            body = {"files": [("file", (f"{i}.png", p, "image/png")) for i, p in enumerate(pngs)]}
        size = sum(map(len, pngs)) if pngs is not None else len(json.dumps(body["json"]))
        http = asyncio.run(
            load(
                args.url,
                body,
                requests=args.requests,
                concurrency=args.concurrency,
                seconds=args.seconds,
            )
        )
        results[name] = {
            "images": n,
            "kind": kind,
            "body_bytes": size,
            "in_process": in_process(args.package, images, args.repeats, pngs),
            "http": http,
        }
        if args.bare_url and kind == "JSON":  # the same load on a route that does nothing
            bare = load(args.bare_url, body, requests=args.requests,
                        concurrency=args.concurrency, seconds=args.seconds)  # fmt: skip
            results[name]["bare"] = asyncio.run(bare)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
