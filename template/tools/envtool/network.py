"""Network probing: whether a package index answers, and its URL as it may be shown."""

from __future__ import annotations

import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path


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
