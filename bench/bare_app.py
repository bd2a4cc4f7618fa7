"""The framework's own floor for bench/serving.py: one bare FastAPI route that takes the same JSON
body as the project's `/predict` and answers a constant, served by the same uvicorn as the
project's API (run by the project's Python: `uvicorn --app-dir bench bare_app:app`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/predict")
def predict(body: dict[str, Any]) -> dict[str, str]:
    """Parse the body, do nothing with it: what FastAPI and uvicorn alone cost a request."""
    return {"label": "none"}
