"""A Docker engine for the tests, and the project's images built with it.

Debian's dockerd runs as root without systemd: its data root lives in the cache outside the repo
(built images survive for the next run), its sockets and exec root in a temporary folder. It has no
bridge (no docker0 with private addresses); builds use the host's network to reach the package
registries. No image registry is reachable, so the images are built on a base made from Debian's
packages and passed through the Dockerfiles' BASE_IMAGE build arg; the production default stays the
registry's python image.

Only the processes started here are ever stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import visible
from tests.support.caches import IMAGES_STEP, cache_dir, caches_only, missing

REPO = Path(__file__).resolve().parents[2]
CACHE = cache_dir()
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # the engine's own client; another one earlier on PATH may not match its API
# What a Debian base needs for the images: Python with venv, CA certificates, useradd (in minbase).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
SUITE = "bookworm"


def missing_tools() -> list[str]:
    """The Debian packages this tier needs and this machine lacks (tests/node/install.sh installs them)."""
    wanted = {DOCKERD: "docker.io", "/usr/sbin/debootstrap": "debootstrap"}
    return [pkg for path, pkg in wanted.items() if not Path(path).exists()]


def debian_mirror() -> str:
    """The mirror this machine's apt uses (read, never typed: it is the machine's own setting)."""
    for sources in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not sources.exists():
            continue
        for line in sources.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1:
                return words[1]
            if line.startswith("deb ") and len(words) > 2:
                return words[1]
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")


@dataclass
class DockerEngine:
    data_root: Path = field(default_factory=lambda: CACHE / "docker")
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="finetune-docker-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60) -> DockerEngine:
        self.data_root.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(
            [
                DOCKERD,
                f"--data-root={self.data_root}",
                f"--exec-root={self.run_dir / 'exec'}",
                f"--pidfile={self.run_dir / 'dockerd.pid'}",
                f"--host={self.host}",
                "--containerd-namespace=finetune-tests",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--storage-driver=overlay2",
                "--exec-opt=native.cgroupdriver=cgroupfs",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dockerd did not answer in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        path = self.run_dir / "dockerd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def docker(
        self, *args: str, check: bool = True, stdin: bytes | None = None, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [DOCKER, f"--host={self.host}", *args],
            capture_output=capture,
            text=True,
            input=stdin.decode() if stdin is not None else None,
            check=False,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def image_id(self, ref: str) -> str:
        return self.docker("image", "inspect", "--format={{.Id}}", ref).stdout.strip()

    def image_size(self, ref: str) -> int:
        return int(self.docker("image", "inspect", "--format={{.Size}}", ref).stdout.strip())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        unmount_under(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def unmount_under(folder: Path) -> None:
    """Lazily unmount what a stopped daemon left mounted below `folder` (dockerd's netns, a pod's
    volumes), deepest first, so the folder can be removed."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def base_image_ref() -> str:
    key = hashlib.sha256(" ".join((SUITE, *BASE_PACKAGES)).encode()).hexdigest()[:10]
    return f"finetune-base:{SUITE}-{key}"


def tagged_images(data_root: Path | None = None) -> dict[str, str]:
    """Every tag in the engine's data root and its image id, read from disk: no dockerd needed, so
    the setup stage can say "cached" in well under a second."""
    path = (data_root or CACHE / "docker") / "image" / "overlay2" / "repositories.json"
    if not path.exists():
        return {}
    repositories: dict[str, dict[str, str]] = json.loads(path.read_text()).get("Repositories", {})
    return {ref: image_id for tags in repositories.values() for ref, image_id in tags.items()}


def ensure_base_image(engine: DockerEngine) -> str:
    """A Debian base with Python, made by debootstrap from Debian's packages (once; cached in the engine)."""
    ref = base_image_ref()
    if engine.has_image(ref):
        return ref
    if caches_only():
        raise missing(f"the Debian base image {ref}", IMAGES_STEP)
    with tempfile.TemporaryDirectory(prefix="finetune-rootfs-") as tmp, visible.current(IMAGES_STEP) as progress:
        root = Path(tmp) / "rootfs"
        progress.say(f"==> debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} into the base image {ref}")
        progress.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                debian_mirror(),
            ],
            show=lambda line: line.startswith("I: Base system installed"),
            counted="debootstrap lines",
        )
        # This machine's TLS trust (pip in a build verifies the registries against it), and pip told
        # to use it: pip otherwise trusts only its own bundled list.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        progress.run([DOCKER, f"--host={engine.host}", "import", "-", ref], stdin=tar.stdout.fileno())
        if tar.wait() != 0:
            raise RuntimeError(f"tar of the debootstrap root for {ref} failed ({tar.returncode})")
    return ref


def image_inputs(dockerfile: str, base: str, context: Path = REPO) -> str:
    """A key of everything an image is built from: the Dockerfile, every file its COPY lines take from
    the context (less what .dockerignore drops: caches, bytecode, egg-info), and the base image."""
    digest = hashlib.sha256(f"{dockerfile}\0{base}\0".encode())
    text = (context / dockerfile).read_text()
    digest.update(text.encode())
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            sources.extend(w for w in words[1:-1] if not w.startswith("--"))
    for source in sorted(set(sources)):
        path = context / source
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            parts = file.relative_to(context).parts
            if not file.is_file() or any(p == "__pycache__" or p.endswith((".pyc", ".egg-info")) for p in parts):
                continue
            digest.update(f"{'/'.join(parts)}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _stamp(ref: str) -> Path:
    return CACHE / "images" / f"{ref.replace('/', '_').replace(':', '_')}.json"


def cached_image(dockerfile: str, ref: str, base: str, data_root: Path | None = None) -> str | None:
    """The image id of `ref` when it was built from exactly the current inputs and is still in the engine."""
    stamp = _stamp(ref)
    if not stamp.exists():
        return None
    recorded = json.loads(stamp.read_text())
    if recorded.get("inputs") != image_inputs(dockerfile, base):
        return None
    image_id = tagged_images(data_root).get(ref)
    return image_id if image_id == recorded.get("image_id") else None


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    image_id: str
    seconds: float
    size_bytes: int


def docker_build(engine: DockerEngine, dockerfile: str, ref: str, base: str, context: Path = REPO) -> BuiltImage:
    """`docker build` of one of the project's Dockerfiles on the given base, its steps shown as they run;
    the engine's layer cache makes a rebuild after a code change cheap."""
    started = time.monotonic()
    with visible.current(IMAGES_STEP) as progress:
        progress.say(f"==> docker build -f {dockerfile} -t {ref} (on {base})")
        progress.run(
            [
                DOCKER,
                f"--host={engine.host}",
                "build",
                "--network=host",
                f"--build-arg=BASE_IMAGE={base}",
                "-f",
                str(context / dockerfile),
                "-t",
                ref,
                str(context),
            ],
            show=lambda line: line.startswith("Step "),
            counted="lines of build output",
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    return BuiltImage(ref, engine.image_id(ref), time.monotonic() - started, engine.image_size(ref))


def build_image(engine: DockerEngine, dockerfile: str, ref: str, base: str) -> BuiltImage:
    """The image of the current Dockerfile and sources: the one built before when nothing changed, else
    built now and stamped with its inputs (never under pytest: there it must be built already)."""
    image_id = cached_image(dockerfile, ref, base, engine.data_root)
    if image_id is not None:
        return BuiltImage(ref, image_id, 0.0, engine.image_size(ref))
    if caches_only():
        raise missing(f"the image {ref} of the current {dockerfile} and sources", IMAGES_STEP)
    built = docker_build(engine, dockerfile, ref, base)
    _stamp(ref).parent.mkdir(parents=True, exist_ok=True)
    _stamp(ref).write_text(json.dumps({"inputs": image_inputs(dockerfile, base), "image_id": built.image_id}))
    return built


OPERATOR_IMAGE = "finetune-operator:node-test"
TRAINER_IMAGE = "finetune-trainer:node-test"


# The project's images: name -> (Dockerfile, the tag the node tier runs).
IMAGES = {
    "operator": ("Dockerfile.operator", OPERATOR_IMAGE),
    "trainer": ("Dockerfile.trainer", TRAINER_IMAGE),
}


def missing_images() -> list[str]:
    """The images that are not built from the current sources, read from disk (no dockerd)."""
    base = base_image_ref()
    absent = [] if base in tagged_images() else [base]
    return absent + [ref for dockerfile, ref in IMAGES.values() if cached_image(dockerfile, ref, base) is None]


def build_all(engine: DockerEngine) -> dict[str, BuiltImage]:
    base = ensure_base_image(engine)
    built = {name: build_image(engine, dockerfile, ref, base) for name, (dockerfile, ref) in IMAGES.items()}
    if not caches_only():
        # Earlier builds of the same tags, now untagged: gigabytes each in the cache. The layers of
        # the images just built are kept (they are the next build's cache).
        engine.docker("image", "prune", "--force")
    return built
