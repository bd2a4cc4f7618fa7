"""The class's report from one or more `check` folders (shards merge): CSV, JSON, one HTML page.

    python -m staff report checks/shard-1 checks/shard-2 --out report

report.json holds every student's result; report.csv one row per student (score, status, time,
commit, each check's status); report.html is one static page (no external assets: it opens
from a file or any web server) with a summary per check and a table of students x checks,
sortable by clicking a column's header, each cell linking to that check's log.
"""

from __future__ import annotations

import csv
import html
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from staff import batch

MARK = {"pass": "✔", "fail": "✘", "timeout": "⏱", "skipped": "-"}


def load(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Every saved result of the folders (OUT/results/ID.json), each with its folder."""
    rows: dict[str, dict[str, Any]] = {}
    for folder in folders:
        results = folder / "results"
        if not results.is_dir():
            raise batch.BatchError(f"{folder} has no results/ folder: not a check output")
        for path in sorted(results.glob("*.json")):
            row = json.loads(path.read_text(encoding="utf-8"))
            row["folder"] = str(folder.resolve())
            rows[row["id"]] = row
    return sorted(rows.values(), key=lambda r: r["id"])


def check_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The checks in rubric order (the first row that has each)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.get("weights") or row.get("checks") or {}))
    return list(names)


def per_check(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per check: how many passed, and who did not, with why."""
    graded = [r for r in rows if r["status"] == "checked"]
    lines = []
    for name in check_names(rows):
        results = [(r["id"], r["checks"].get(name)) for r in graded if r["checks"].get(name)]
        passed = sum(c["status"] == "pass" for _, c in results)
        line = f"{name}: {passed}/{len(results)} passed"
        bad = [
            f"{i} ({c['status']}: {c['detail'][:120]})" for i, c in results if c["status"] != "pass"
        ]
        lines.append(line + (f"; {len(bad)} not: " + "; ".join(bad) if bad else ""))
    return lines


def summary_text(rows: Sequence[dict[str, Any]]) -> str:
    """The whole class in a few lines: counts, mean score, then per check."""
    graded = [r for r in rows if r["status"] == "checked"]
    mean = sum(r["score"] for r in graded) / len(graded) if graded else 0.0
    head = (
        f"{len(rows)} students: {len(graded)} checked (mean score {mean:.1f}%), "
        f"{sum(r['status'] == 'no-submission' for r in rows)} without a submission, "
        f"{sum(r['status'] == 'error' for r in rows)} errors"
    )
    return "\n".join([head, *(f"  {line}" for line in per_check(rows))])


def log_link(row: dict[str, Any], check: dict[str, Any], out: Path) -> str:
    """The check's log, relative to the report's folder (shards keep their own logs)."""
    if not check.get("log"):
        return ""
    return os.path.relpath(Path(row["folder"]) / check["log"], out).replace(os.sep, "/")


def write(out: Path, folders: Sequence[Path]) -> dict[str, Path]:
    """report.json, report.csv and report.html in `out`; their paths."""
    rows = load(folders)
    names = check_names(rows)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"report.{ext}" for ext in ("json", "csv", "html")}
    public = [{k: v for k, v in r.items() if k != "folder"} for r in rows]
    paths["json"].write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n", "utf-8")
    with paths["csv"].open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "id",
                "status",
                "score",
                "seconds",
                "commit",
                "date",
                "later_commits",
                *names,
                "detail",
            ]
        )
        for r in rows:
            writer.writerow([
                r["id"], r["status"], r["score"], r["seconds"], r["commit"], r["date"],
                r["later_commits"], *((r["checks"].get(n) or {}).get("status", "") for n in names),
                r["detail"],
            ])  # fmt: skip
    paths["html"].write_text(page(rows, names, out), encoding="utf-8")
    return paths


def page(rows: Sequence[dict[str, Any]], names: Sequence[str], out: Path) -> str:
    """The static HTML page."""
    e = html.escape
    head = "".join(
        f'<th data-type="{t}">{e(n)}</th>'
        for n, t in [("student", "text"), ("score", "num"), ("status", "text"), ("time (s)", "num"),
                     ("commit", "text"), ("late commits", "num")] + [(n, "text") for n in names]
    )  # fmt: skip
    body = []
    for r in rows:
        cells = [
            f"<td>{e(r['id'])}</td>",
            f'<td data-sort="{r["score"]}">{r["score"]:.1f}</td>',
            f'<td class="{e(r["status"])}">{e(r["status"])}{": " + e(r["detail"]) if r["detail"] else ""}</td>',
            f'<td data-sort="{r["seconds"]}">{r["seconds"]:.1f}</td>',
            f'<td title="{e(r["date"])}"><code>{e(r["commit"][:10])}</code></td>',
            f'<td data-sort="{r["later_commits"]}">{r["later_commits"]}</td>',
        ]
        for n in names:
            c = r["checks"].get(n)
            if not c:
                cells.append('<td data-sort="">-</td>')
                continue
            text = f"{MARK.get(c['status'], '?')} {e(c['status'])} {c['seconds']:.1f}s"
            link = log_link(r, c, out)
            inner = f'<a href="{e(link)}">{text}</a>' if link else text
            cells.append(
                f'<td class="{e(c["status"])}" data-sort="{e(c["status"])}" title="{e(c["detail"])}">{inner}</td>'
            )
        body.append(f'<tr data-id="{e(r["id"])}">{"".join(cells)}</tr>')
    summary = "".join(f"<li>{e(line)}</li>" for line in summary_text(rows).splitlines())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Submissions report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: .3rem .5rem; }}
th {{ cursor: pointer; background: #f3f3f3; }} th[aria-sort]::after {{ content: " ⇅"; }}
.pass {{ background: #e6f6e6; }} .fail, .error {{ background: #fbe4e4; }}
.timeout {{ background: #fff1d6; }} .skipped, .no-submission {{ background: #eee; }}
</style></head><body>
<h1>Submissions report</h1>
<ul id="summary">{summary}</ul>
<p>Click a column's header to sort; click a result to read its log.</p>
<table id="results"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<script>
document.querySelectorAll("#results th").forEach((th, col) => th.addEventListener("click", () => {{
  const tbody = document.querySelector("#results tbody");
  const up = th.getAttribute("aria-sort") !== "ascending";
  document.querySelectorAll("#results th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", up ? "ascending" : "descending");
  const key = tr => {{ const td = tr.children[col]; return td.dataset.sort ?? td.textContent; }};
  const num = th.dataset.type === "num";
  const rows = [...tbody.rows].sort((a, b) => {{
    const x = key(a), y = key(b);
    const d = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
    return up ? d : -d;
  }});
  rows.forEach(r => tbody.appendChild(r));
}}));
</script></body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    """report's entry point; 0, or 2 when a folder is not a check output."""
    parser = batch.parser("python -m staff report", __doc__ or "")
    parser.add_argument("folders", type=Path, nargs="+", help="check output folders (shards)")
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="folder (default: ./report)"
    )
    args = parser.parse_args(argv)
    try:
        paths = write(args.out.resolve(), args.folders)
        print(summary_text(load(args.folders)))
    except batch.BatchError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(f"Report: {paths['html']} (and .json, .csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
