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
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FINETUNE_CACHE", Path.home() / ".cache" / "finetune-operator"))
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


def ensure_base_image(engine: DockerEngine) -> str:
    """A Debian base with Python, made by debootstrap from Debian's packages (once; cached in the engine)."""
    ref = base_image_ref()
    if engine.has_image(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="finetune-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                debian_mirror(),
            ],
            check=True,
            capture_output=True,
        )
        # This machine's TLS trust (pip in a build verifies the registries against it), and pip told
        # to use it: pip otherwise trusts only its own bundled list.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [DOCKER, f"--host={engine.host}", "import", "-", ref], stdin=tar.stdout, capture_output=True, check=False
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import of the base failed: {imported.stderr.decode(errors='replace')}")
    return ref


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    image_id: str
    seconds: float
    size_bytes: int


def build_image(engine: DockerEngine, dockerfile: str, ref: str, base: str, context: Path = REPO) -> BuiltImage:
    """`docker build` of one of the project's Dockerfiles on the given base; the engine's cache makes reruns cheap."""
    started = time.monotonic()
    out = subprocess.run(
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
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"docker build -f {dockerfile} failed:\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}")
    return BuiltImage(ref, engine.image_id(ref), time.monotonic() - started, engine.image_size(ref))


OPERATOR_IMAGE = "finetune-operator:node-test"
TRAINER_IMAGE = "finetune-trainer:node-test"


def build_all(engine: DockerEngine) -> dict[str, BuiltImage]:
    base = ensure_base_image(engine)
    built = {
        "operator": build_image(engine, "Dockerfile.operator", OPERATOR_IMAGE, base),
        "trainer": build_image(engine, "Dockerfile.trainer", TRAINER_IMAGE, base),
    }
    # Earlier builds of the same tags, now untagged: gigabytes each in the cache. The layers of the
    # images just built are kept (they are the next build's cache).
    engine.docker("image", "prune", "--force")
    return built


if __name__ == "__main__":
    # Prebuild (or time) both images: python -m tests.node.docker_engine
    eng = DockerEngine().start()
    try:
        t0 = time.monotonic()
        base_ref = ensure_base_image(eng)
        print(f"base {base_ref}: {time.monotonic() - t0:.0f} s")
        for name, image in build_all(eng).items():
            print(f"{name}: {image.ref} {image.size_bytes / 1e9:.2f} GB in {image.seconds:.0f} s")
    finally:
        eng.stop()
