"""Students' repositories on a git host: URLs from a template, git without prompts, redaction.

Credentials come from git's own configuration (a credential helper) or the SSH agent, never
from a URL: a --remote with a password or token in it is refused, and every URL or git message
that reaches a report or log passes through redact() all the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from staff import batch

# scheme://user:secret@host -> scheme://user:***@host; http(s)://token@host -> http(s)://***@host
USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*)(?::[^/@\s]*)?@")
GIT_TIMEOUT = 300.0


class RemoteError(batch.BatchError):
    """An unusable --remote: nothing is attempted."""


def redact(text: str) -> str:
    """`text` with the secret part of every URL's user information replaced by ***."""

    def hide(m: re.Match[str]) -> str:
        scheme, user = m.group("scheme"), m.group("user")
        if scheme.lower().startswith("http"):
            return f"{scheme}***@"  # a token often is the user name over HTTPS
        return f"{scheme}{user}:***@" if ":" in m.group(0)[len(scheme) :] else m.group(0)

    return USERINFO.sub(hide, text)


def check_template(template: str) -> str:
    """The --remote template, or RemoteError when it lacks {id} or carries a credential."""
    if "{id}" not in template:
        raise RemoteError(f"--remote {template!r} has no {{id}}: e.g. ssh://git@host/ml/{{id}}.git")
    if redact(template) != template or urlsplit(template).password:
        raise RemoteError(
            "--remote carries a credential: remove it and let git find it (an SSH key in your "
            "agent, or `git config --global credential.helper store|cache|libsecret`)"
        )
    try:
        template.format(id="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise RemoteError(f"--remote {template!r}: only {{id}} may be in braces ({exc})") from None
    return template


def url_for(template: str, student: str) -> str:
    """The student's repository URL."""
    return template.format(id=student)


def git(
    args: Sequence[str], cwd: Path | None = None, timeout: float = GIT_TIMEOUT
) -> tuple[int, str]:
    """(status, redacted output) of git, which never waits for a password prompt."""
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # no username/password prompt: the helper or nothing
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "LC_ALL": "C",
    }
    status, output = batch.run_command(["git", *args], timeout, cwd, env=env)
    return status, redact(output)


def last_line(output: str) -> str:
    """The line of git's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", " !"))]
    return (errors or lines or ["git printed nothing"])[-1]
