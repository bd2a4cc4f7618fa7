"""Reading installers' failures: a requirement the index lacks, an index that does not answer."""

from __future__ import annotations

import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path

_REQ = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
# How pip, uv, Poetry and conda say that a requirement does not exist on the index (tools wrap
# long messages to the terminal's width, so words may be split by any whitespace).
MISSING_PACKAGE = [
    re.compile(rf"No\s+matching\s+distribution\s+found\s+for\s+{_REQ}"),
    re.compile(rf"Because\s+{_REQ}\s+was\s+not\s+found\s+in\s+the\s+package\s+registry"),
    re.compile(rf"depends\s+on\s+{_REQ}\s+\([^)]*\)\s+which\s+doesn't\s+match\s+any\s+versions"),
    re.compile(rf"PackagesNotFoundError:[^\n]*\n(?:\s*\n)*\s*-\s*{_REQ}"),
]
# How they say that the index could not be reached (not that a package is missing).
UNREACHABLE = re.compile(
    r"Connection refused|Failed to establish a new connection|Name or service not known|"
    r"Temporary failure in name resolution|Network is unreachable|No route to host|"
    r"dns error|ConnectTimeout|connection timed out|Could not connect|"
    r"invalid peer certificate|certificate verify failed|All attempts to connect to",
    re.IGNORECASE,
)


def missing_package(output: str) -> str | None:
    """The requirement an installer could not find, if its output says so."""
    found = next((m for p in MISSING_PACKAGE if (m := p.search(output))), None)
    return found.group(1) if found else None


def unreachable_index(output: str) -> str | None:
    """'<reason>: <URL>' when the output says the index could not be reached, or (pip: in build
    isolation it only says "No matching distribution found for hatchling") when an index it
    lists ("Looking in indexes: ...") does not answer; no credentials."""
    found = UNREACHABLE.search(output)
    if not found:
        listed = re.findall(r"Looking in indexes: ([^\n]+)", output)
        urls = [u.strip() for line in listed for u in line.split(",") if u.strip()]
        down = next((u for u in dict.fromkeys(urls) if not index_answers(u)), None)
        return f"no answer from {hide_credentials(down)}" if down else None
    url = re.search(r"https?://[^\s'\"`<>()]+", output)
    host = re.search(r"host='([^']+)', port=(\d+)", output)  # pip's urllib3 message
    poetry = re.search(r"All attempts to connect to (\S+) failed", output)
    where = url[0] if url else (f"{host[1]}:{host[2]}" if host else poetry[1] if poetry else "")
    reason = "could not connect" if poetry else found[0].lower()
    return reason + (f": {hide_credentials(where)}" if where else "")


def hide_credentials(url: str) -> str:
    """`url` without user:password@ (it never reaches the screen)."""
    return re.sub(r"//[^/@\s]*@", "//", url)


def index_answers(url: str, timeout: float = 5) -> bool:
    """Whether the index at `url` accepts a connection (a file:// index: whether it exists)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path)).exists()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False
