"""The DVC remote question (copier.yml's `dvc_remote`), loaded by copier-template-extensions.

- `dvc_remote_error(url)`: '' when the answer may be written into .dvc/config, README.md and CI
  files; otherwise what is wrong and what to do. Credentials are refused (they would be committed),
  and so is anything needing escaping in an INI value, YAML or a shell (quotes, spaces, `#`).
- `dvc_remote_scheme(url)`: '' (the local folder beside the project), s3, gs, azure or ssh.
- `dvc_plugin(url)`: the DVC plugin the scheme needs, one name on PyPI and conda-forge ('' for
  the local folder, which DVC itself handles).
- `dvc_ci_secrets(url)`: the CI secrets that give DVC the remote's credentials (README, CI files).
"""

from __future__ import annotations

import re

from jinja2 import Environment
from jinja2.ext import Extension

# scheme -> DVC plugin (the same distribution name on PyPI and conda-forge)
PLUGINS = {"s3": "dvc-s3", "gs": "dvc-gs", "azure": "dvc-azure", "ssh": "dvc-ssh"}
# scheme -> CI secrets; the first decides whether CI pulls (it is the one every set-up needs)
CI_SECRETS = {
    "s3": ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    "gs": ("GCP_SERVICE_ACCOUNT_KEY",),
    "azure": ("AZURE_STORAGE_CONNECTION_STRING",),
    "ssh": ("DVC_SSH_KEY",),
}
# host[:port] then a path: letters, digits and . _ ~ % + = - / only (no ? & # ; quotes, spaces)
_URL = re.compile(
    r"(s3|gs|azure|ssh)://([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]+)?(/[A-Za-z0-9._~%+=/-]*)?"
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_EXAMPLES = (
    "s3://my-bucket/dvc, gs://my-bucket/dvc, azure://my-container/dvc or "
    "ssh://user@host/srv/dvc; or leave it empty for a local folder beside the project"
)
_CREDENTIALS = (
    "Credentials never go into the project's files (they would be committed): give the URL "
    'without them and give them to DVC as its README section "Data versioning with DVC" says '
    "(environment variables such as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING, an SSH key, or "
    "`dvc remote modify --local storage ...`, which writes the git-ignored .dvc/config.local)."
)


def dvc_remote_error(url: str) -> str:
    """'' when `url` is a remote the project may name; otherwise the message copier shows.
    The answer itself is never repeated: it may hold a secret."""
    if not url:
        return ""
    scheme = _SCHEME.match(url)
    if re.search(r"[\s\"'`\\]", url) or not url.isprintable():
        return (
            "The DVC remote must be one URL without spaces, quotes, backslashes or line breaks "
            f"(percent-encode them: %20): {_EXAMPLES}."
        )
    if scheme is None or scheme.group(1).lower() not in PLUGINS:
        return f"The DVC remote must be a URL DVC can push to: {_EXAMPLES}."
    if re.match(r"[^/]*//[^/@]*:[^/@]*@", url) or (
        "@" in url.split("/", 3)[2] and scheme.group(1) != "ssh"
    ):
        return "The DVC remote carries credentials (user:password@ or token@). " + _CREDENTIALS
    if re.search(r"[?&#;]", url) or re.search(r"(?i)(token|secret|password|sig|key)=", url):
        return "The DVC remote carries a query or fragment (?token=..., #...). " + _CREDENTIALS
    if not _URL.fullmatch(url):
        return (
            "The DVC remote is not a valid URL: a bucket, container or host, then a path of "
            f"letters, digits and . _ ~ % + = - / only: {_EXAMPLES}."
        )
    return ""


def dvc_remote_scheme(url: str) -> str:
    """The remote's scheme: s3, gs, azure or ssh; '' for the local folder (or any other URL)."""
    found = _SCHEME.match(url or "")
    return found.group(1).lower() if found and found.group(1).lower() in PLUGINS else ""


def dvc_plugin(url: str) -> str:
    """The DVC plugin the remote's scheme needs (e.g. dvc-s3); '' for the local folder."""
    return PLUGINS.get(dvc_remote_scheme(url), "")


def dvc_ci_secrets(url: str) -> list[str]:
    """The CI secrets that give DVC the remote's credentials ([] for the local folder)."""
    return list(CI_SECRETS.get(dvc_remote_scheme(url), ()))


class DvcRemote(Extension):
    """The Jinja extension that gives copier.yml the dvc_* functions above as filters."""

    def __init__(self, environment: Environment) -> None:
        """Register dvc_remote_error, dvc_remote_scheme, dvc_plugin, dvc_ci_secrets as filters."""
        super().__init__(environment)
        environment.filters["dvc_remote_error"] = dvc_remote_error
        environment.filters["dvc_remote_scheme"] = dvc_remote_scheme
        environment.filters["dvc_plugin"] = dvc_plugin
        environment.filters["dvc_ci_secrets"] = dvc_ci_secrets
