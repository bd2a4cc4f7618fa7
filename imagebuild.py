"""Build the generated Dockerfiles for real with buildah, on base images made on this machine.

No image can be pulled here (no Docker engine, no registry), so the images the Dockerfiles name
are made locally and tagged with exactly those names, and the Dockerfiles are built unmodified:
- ``python:3.11-slim``: a Debian bookworm rootfs from debootstrap (bookworm's Python is 3.11).
  debootstrap is the slowest step on a fresh machine, so its tarball is cached across runs;
- ``ghcr.io/astral-sh/uv:<version>``: the ``uv`` and ``uvx`` binaries of the ``uv`` wheel of that
  same version on PyPI, which is what the official distroless image holds.
Each session gets its own buildah storage root, so the first build starts with an empty layer
cache and other users' images are never touched. tests/ and bench/ both use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from dockerfile_parse import DockerfileParser

from devsupport import stop_group

T = TypeVar("T")

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# This machine's egress re-signs TLS with a CA that only the host's system bundle holds; the
# bundle is mounted into every RUN step. The host points its tools at it with these variables,
# and so does the stand-in base image (as a company base image would): without them uv and
# requests (poetry) trust only the roots they ship.
TLS_ENV = {"SSL_CERT_FILE": str(CA_BUNDLE), "REQUESTS_CA_BUNDLE": str(CA_BUNDLE)}
DEBIAN_SUITE = "bookworm"
DEBIAN_PYTHON = "3.11"  # bookworm's python3: the only python:X.Y-slim we can make here
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
# Parts of the rootfs no build needs (the official slim images leave them out as well).
ROOTFS_PRUNE = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
)
STORE_PREFIX = "copier-mlops-buildah-"
STEP_LINE = re.compile(r"(\[\d+/\d+\] )?STEP \d+/\d+: ")
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cache_dir() -> Path:
    """Where the debootstrap tarball is kept between runs ($COPIER_MLOPS_CACHE overrides)."""
    if os.environ.get("COPIER_MLOPS_CACHE"):
        return Path(os.environ["COPIER_MLOPS_CACHE"]) / "docker"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "copier-mlops" / "docker"


def missing_tools() -> str:
    """Why images cannot be built on this machine, or "" when they can."""
    if sys.platform != "linux":
        return "image builds need Linux (buildah and debootstrap)"
    absent = [t for t in ("buildah", "debootstrap") if shutil.which(t) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (.ci/run installs them with apt)"
    if os.geteuid() != 0:
        return "debootstrap and buildah's chroot isolation need root (.ci/run runs as root)"
    return ""


def storage_driver() -> str:
    """overlay when the kernel lets us mount it (builds are ~4x faster), else vfs.

    vfs copies the whole filesystem for every layer; it works everywhere but a multi-stage build
    of a scientific stack takes minutes. $COPIER_MLOPS_BUILDAH_DRIVER forces a choice.
    """
    forced = os.environ.get("COPIER_MLOPS_BUILDAH_DRIVER")
    if forced:
        return forced
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {name: Path(tmp) / name for name in ("lower", "upper", "work", "merged")}
        for d in dirs.values():
            d.mkdir()
        opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            return "vfs"
        subprocess.run(["umount", str(dirs["merged"])], check=False)
        return "overlay"


def storage_parent(fallback: Path) -> Path:
    """Where to put the build store: RAM (/dev/shm) when it has room, else `fallback`.

    Builds write and delete gigabytes of small files; on a shared disk that I/O dominates
    (a pip + scikit-learn build took 142 s on disk and 66 s in tmpfs here). One variant at a
    time needs about 2 GB. $COPIER_MLOPS_BUILDAH_PARENT forces a place.
    """
    if os.environ.get("COPIER_MLOPS_BUILDAH_PARENT"):
        return Path(os.environ["COPIER_MLOPS_BUILDAH_PARENT"])
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
    except OSError:
        return fallback
    return shm if stat.f_bavail * stat.f_frsize >= 8 * 2**30 else fallback


def remove_stale_stores(parent: Path) -> None:
    """Delete stores left by killed sessions (their pid is gone): in RAM they would stay forever."""
    for store in parent.glob(f"{STORE_PREFIX}*"):
        pid = store.name.removeprefix(STORE_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            unmount_below(store)
            shutil.rmtree(store, ignore_errors=True)


def unmount_below(path: Path) -> None:
    """Unmount whatever buildah left mounted under `path` (deepest first)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this host (known to be reachable)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for src in sources:
        lines = src.read_text(errors="replace").splitlines() if src.is_file() else []
        for line in lines:
            found = re.search(r"(https?://\S+/debian)/?(?:\s|$)", line)
            if found and not line.lstrip().startswith("#"):
                return found.group(1)
    return "http://deb.debian.org/debian"


def rootfs_tarball() -> Path:
    """A tarball of a minimal Debian rootfs with Python, made by debootstrap once and cached."""
    key = hashlib.sha256(f"{DEBIAN_SUITE} {BASE_PACKAGES} {ROOTFS_PRUNE}".encode()).hexdigest()
    tarball = cache_dir() / f"rootfs-{DEBIAN_SUITE}-{key[:12]}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            DEBIAN_SUITE,
            str(rootfs),
            debian_mirror(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        for rel in ROOTFS_PRUNE:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True
        )
        partial.replace(tarball)  # atomic: an interrupted run never leaves half a tarball
    return tarball


def pinned_args(dockerfile: Path) -> dict[str, str]:
    """ARG name -> default for the ARGs before the first FROM: where the Dockerfile pins versions."""
    args = {}
    for ins in DockerfileParser(path=str(dockerfile)).structure:
        if ins["instruction"] == "FROM":
            break
        if ins["instruction"] == "ARG":
            name, _, default = ins["value"].partition("=")
            args[name] = default
    return args


@dataclass
class Build:
    """One `buildah build`: its output lines, when each arrived, and how long it all took."""

    lines: list[tuple[float, str]]  # (seconds since the start, line)
    seconds: float

    @property
    def output(self) -> str:
        """The build's output, its lines without their times."""
        return "\n".join(line for _, line in self.lines)

    def _step(self, fragment: str) -> int:
        """Index of the first step line containing `fragment` (AssertionError when none does)."""
        for i, (_, line) in enumerate(self.lines):
            if STEP_LINE.match(line) and fragment in line:
                return i
        raise AssertionError(f"no build step contains {fragment!r}:\n{self.output}")

    def step_cached(self, fragment: str) -> bool:
        """Whether the first step whose instruction contains `fragment` came from the cache.

        buildah interleaves stages: a COPY --from step may wait while another stage's steps
        print. Each step (but FROM) ends with `--> <id>`, after `--> Using cache <id>` when it was
        cached; such lines belong to the newest step still open.
        """
        target = self._step(fragment)
        open_steps: list[int] = []
        cached: set[int] = set()
        for i, (_, line) in enumerate(self.lines):
            step = STEP_LINE.match(line)
            if step:
                if not line[step.end() :].startswith("FROM "):
                    open_steps.append(i)
            elif line.startswith("--> ") and open_steps:
                if line.startswith("--> Using cache "):
                    cached.add(open_steps[-1])
                else:
                    open_steps.pop()
        return target in cached

    def step_seconds(self, fragment: str) -> float:
        """How long that step took: until the next step (or the commit) started."""
        i = self._step(fragment)
        end = next(
            (t for t, x in self.lines[i + 1 :] if STEP_LINE.match(x) or "COMMIT" in x), self.seconds
        )
        return end - self.lines[i][0]


CLONE_NEWNET = 0x40000000  # <sched.h>: setns(2) joins a network namespace


class NetNamespace:
    """A private network namespace holding only a loopback interface, kept alive by a sleeping
    process (so nothing is left behind when it ends: no named namespace in /run/netns).

    buildah's chroot isolation shares the network of whoever runs buildah: a server started in
    a container binds the host's ports, and an image's `--host 0.0.0.0` would listen on every
    interface of the machine. Run inside one of these, the image's own command and health check
    keep their fixed port, reachable only from this namespace, whatever else runs on the host.
    """

    def __init__(self) -> None:
        """Start the holder in a new net namespace, wait until it is inside, bring loopback up."""
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sleep", "infinity"], start_new_session=True
        )
        host = os.stat("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while self._ns_of(self.holder.pid) in (None, (host.st_dev, host.st_ino)):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("unshare --net did not start (it needs root)")
            time.sleep(0.01)
        self.identity = self._ns_of(self.holder.pid)
        subprocess.run([*self.enter, "ip", "link", "set", "lo", "up"], check=True)

    @property
    def enter(self) -> list[str]:
        """The prefix that runs a command in this namespace."""
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--"]

    @staticmethod
    def _ns_of(pid: int) -> tuple[int, int] | None:
        """(device, inode) of a process's network namespace; None when it cannot be read."""
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:  # gone, or not ours to see
            return None
        return st.st_dev, st.st_ino

    def call(self, fn: Callable[[], T]) -> T:
        """fn() on a thread that has joined this namespace (setns(2) moves only the calling
        thread), so its sockets connect to the servers in here; its exception is raised here."""
        result: list[T] = []
        error: list[BaseException] = []

        def joined() -> None:
            """Join the namespace (setns), run fn, keep its result or exception for the caller."""
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/proc/{self.holder.pid}/ns/net", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns to the network namespace")
                finally:
                    os.close(fd)
                result.append(fn())
            except BaseException as exc:  # handed to the caller's thread
                error.append(exc)

        thread = threading.Thread(target=joined)
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return result[0]

    def processes(self) -> list[int]:
        """Every process in this namespace but its holder."""
        pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
        return [p for p in pids if p != self.holder.pid and self._ns_of(p) == self.identity]

    def close(self) -> None:
        """Kill the holder (the namespace ends with it) and reap it."""
        if self.holder.poll() is None:
            os.killpg(self.holder.pid, signal.SIGKILL)
        self.holder.wait()


@contextlib.contextmanager
def net_namespace() -> Iterator[NetNamespace]:
    """A NetNamespace for the `with` block, closed (its holder killed) at the end."""
    ns = NetNamespace()
    try:
        yield ns
    finally:
        ns.close()


class Buildah:
    """buildah on a private storage root; a failing command raises with its whole output."""

    @classmethod
    def create(cls, parent: Path) -> Buildah:
        """A new store under `parent`, named after this process so stale ones can be found."""
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_stores(parent)
        root = Path(tempfile.mkdtemp(prefix=f"{STORE_PREFIX}{os.getpid()}-", dir=parent))
        return cls(root, storage_driver())

    def destroy(self) -> None:
        """Remove every container and image, then the store itself."""
        for args in (("rm", "--all"), ("rmi", "--all", "--force")):
            try:
                self(*args)
            except RuntimeError:
                pass  # the directory goes anyway
        unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def __init__(self, root: Path, driver: str) -> None:
        """buildah's global arguments for the store at `root`; chroot isolation, private TMPDIR."""
        self.root = root
        self.driver = driver
        self.global_args = [
            "--root",
            str(root / "storage"),
            "--runroot",
            str(root / "run"),
            "--storage-driver",
            driver,
        ]
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        # TMPDIR also holds the RUN --mount=type=cache directories: private to this session.
        self.env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "TMPDIR": str(root / "tmp")}

    def __call__(self, *args: str, netns: NetNamespace | None = None) -> str:
        """Run `buildah ARGS` on this store (in `netns` if given): stdout, or RuntimeError."""
        prefix = netns.enter if netns else []
        proc = subprocess.run(
            [*prefix, "buildah", *self.global_args, *args],
            capture_output=True,
            env=self.env,
            check=False,
        )
        out = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise RuntimeError(
                f"buildah {' '.join(args)} failed ({proc.returncode}):\n{out}\n{err}"
            )
        return out.strip()

    # ------------------------------------------------------------------ stand-in base images
    def import_rootfs(self, tarball: Path, name: str) -> None:
        """Commit the rootfs `tarball` as image `name`, configured like the python images."""
        ctr = self("from", "--pull=never", "scratch")
        try:
            mnt = self("mount", ctr)
            subprocess.run(["tar", "-C", mnt, "--numeric-owner", "-xf", str(tarball)], check=True)
            env = {"PATH": IMAGE_PATH, "LANG": "C.UTF-8", **TLS_ENV}
            self("config", *(f"--env={k}={v}" for k, v in env.items()), "--cmd", "python3", ctr)
            self("commit", "--quiet", ctr, name)
        finally:
            self("rm", ctr)

    def has_image(self, name: str) -> bool:
        """Whether the store holds an image matching the reference `name`."""
        return bool(self("images", "--quiet", "--noheading", "--filter", f"reference={name}"))

    def import_uv(self, version: str, name: str, workdir: Path) -> None:
        """Commit an image holding /uv and /uvx from the `uv` wheel of `version` on PyPI."""
        if self.has_image(name):
            return
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(workdir),
                f"uv=={version}",
            ],
            capture_output=True,
            check=True,
        )
        wheel = next(workdir.glob(f"uv-{version}-*.whl"))
        ctr = self("from", "--pull=never", "scratch")
        try:
            with zipfile.ZipFile(wheel) as zf:
                for binary in ("uv", "uvx"):
                    dest = workdir / binary
                    dest.write_bytes(zf.read(f"uv-{version}.data/scripts/{binary}"))
                    dest.chmod(0o755)
                    self("copy", "--quiet", ctr, str(dest), f"/{binary}")
            self("commit", "--quiet", ctr, name)
        finally:
            self("rm", ctr)

    # ------------------------------------------------------------------ builds and images
    def build(self, context: Path, tag: str, target: str | None = None) -> Build:
        """`buildah build --layers` of context/Dockerfile as it is, with the host's network and CA
        (up to stage `target` when given), in Docker's image format as `docker build` makes it
        (the OCI format has no HEALTHCHECK)."""
        args = [
            "buildah",
            *self.global_args,
            "build",
            "--layers",
            "--pull=never",
            "--format",
            "docker",
            "--network",
            "host",
            "--volume",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            *(["--target", target] if target else []),
            "--tag",
            tag,
            str(context),
        ]
        start = time.monotonic()
        lines = []
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env
        ) as proc:
            assert proc.stdout is not None
            for raw in proc.stdout:  # timestamped as they arrive, for per-step timings
                lines.append((time.monotonic() - start, raw.decode(errors="replace").rstrip()))
        build = Build(lines, time.monotonic() - start)
        if proc.returncode != 0:
            raise RuntimeError(
                f"buildah build {context} failed ({proc.returncode}):\n{build.output}"
            )
        return build

    def config(self, image: str) -> dict[str, Any]:
        """The OCI configuration of `image` (User, Env, Cmd, WorkingDir, ExposedPorts, ...)."""
        return dict(json.loads(self("inspect", "--type", "image", image))["OCIv1"]["config"])

    def healthcheck(self, image: str) -> dict[str, Any]:
        """The image's HEALTHCHECK (Test, Interval, ...; {} when none): Docker's format only."""
        docker = json.loads(self("inspect", "--type", "image", image))["Docker"]["config"]
        return dict(docker.get("Healthcheck") or {})

    def run(
        self,
        image: str,
        *cmd: str,
        volumes: tuple[str, ...] = (),
        netns: NetNamespace | None = None,
    ) -> str:
        """Run `cmd` (the image's CMD if none) offline in a new container of `image`, as its USER
        (`volumes`: host:container[:options] bind mounts; `netns`: the network it runs in)."""
        cmd = cmd or tuple(self.config(image)["Cmd"])
        ctr = self("from", "--pull=never", image)
        mounts = [f"--volume={v}" for v in volumes]
        try:
            return self("run", "--network", "none", *mounts, ctr, "--", *cmd, netns=netns)
        finally:
            self("rm", ctr)

    @contextlib.contextmanager
    def start(
        self,
        image: str,
        *cmd: str,
        netns: NetNamespace,
        output: IO[bytes],
        volumes: tuple[str, ...] = (),
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Run `cmd` (the image's CMD if none) in the background, in a new container of `image`
        as its USER, inside `netns` (a server's port is then private to it), its output going to
        `output`. On exit its whole process group is stopped (SIGTERM, then SIGKILL after 20 s)
        and the container removed."""
        cmd = cmd or tuple(self.config(image)["Cmd"])
        ctr = self("from", "--pull=never", image)
        mounts = [f"--volume={v}" for v in volumes]
        args = ["buildah", *self.global_args, "run", *mounts, ctr, "--", *cmd]
        try:
            with subprocess.Popen(
                [*netns.enter, *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: buildah and what it runs
            ) as proc:
                try:
                    yield proc
                finally:
                    stop_group(proc)
        finally:
            self("rm", ctr)

    def files(self, image: str) -> list[str]:
        """Every path in `image`'s filesystem, relative to its root."""
        ctr = self("from", "--pull=never", image)
        try:
            root = Path(self("mount", ctr))
            return [str(p.relative_to(root)) for p in root.rglob("*")]
        finally:
            self("rm", ctr)

    def size(self, image: str) -> str:
        """The image's size as `buildah images` reports it (e.g. "406 MB")."""
        return self("images", "--noheading", "--format", "{{.Size}}", image)
