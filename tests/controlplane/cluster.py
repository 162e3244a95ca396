"""A real Kubernetes control plane on 127.0.0.1 for the tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (simulated nodes and pod lifecycle).

Only the processes started here are ever stopped. Everything listens on loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Protocol

import yaml

from tests.support import caches, visible

from .pki import write_pki

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "admin-token-for-tests"
# Pod labels the kwok stages in stages/ read: hold a pod Running, or fail it with this exit code.
HOLD_LABEL = "finetune.dev/test-hold"
EXIT_CODE_LABEL = "finetune.dev/test-exit-code"
# Where each control plane keeps its etcd, certificates and logs: memory-backed where there is /dev/shm.
ROOT_PARENT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
ROOT_PREFIX = "finetune-cp-"
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"  # the API server's own Service: always the range's first address
CLUSTER_DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_SERVER_NAMES = tuple(
    f"kubernetes{suffix}" for suffix in ("", ".default", ".default.svc", f".default.svc.{CLUSTER_DOMAIN}")
)
STOCK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-delete.yaml",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def built() -> tuple[Path | None, str]:
    """The binaries' folder if every binary is built, else None and what is missing; builds nothing."""
    checked = subprocess.run([str(HERE / "build.sh"), "--check"], capture_output=True, text=True, check=False)
    if checked.returncode == 0:
        return Path(checked.stdout.strip().splitlines()[-1]), ""
    return None, checked.stderr.strip()


def build() -> Path:
    """The binaries' folder, building what is missing first (never under pytest: there it must be cached)."""
    folder, absent = built()
    if folder is not None:
        return folder
    if caches.caches_only():
        raise caches.missing(f"the control plane's Go binaries ({absent})", caches.GO_STEP)
    with visible.current(caches.GO_STEP) as progress:
        # Go names each package as it compiles it (-v): counted, so a cold build shows how far it got.
        lines = progress.run([str(HERE / "build.sh")], show=lambda line: line.startswith("==>"), counted="packages")
    return Path(lines[-1])


class Process(Protocol):
    """What stopping a process takes: a Popen started here, or an AdoptedProcess started by an earlier command."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(frozen=True)
class AdoptedProcess:
    """A process an earlier command started (`python -m tests.node.cluster up`), known by its PID and its start
    time: a PID the kernel has since given to another process reads as ended and is never signalled."""

    pid: int
    started: int  # clock ticks after boot, as /proc/<pid>/stat has it

    @classmethod
    def of(cls, proc: Process) -> AdoptedProcess:
        started = start_ticks(proc.pid)
        if started is None:
            raise RuntimeError(f"process {proc.pid} ended before its start time was recorded")
        return cls(proc.pid, started)

    def poll(self) -> int | None:
        return None if start_ticks(self.pid) == self.started else 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.1)
        return 0


def start_ticks(pid: int) -> int | None:
    """When `pid` started (field 22 of /proc/<pid>/stat); None once it has ended, a zombie included."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else int(fields[19])


@dataclass
class ControlPlane:
    bin: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=ROOT_PARENT)))
    procs: list[Process] = field(default_factory=list)
    # Each component by name, and the command line it was started with: restart() starts it again the same way.
    named: dict[str, Process] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    api_port: int = 0
    kubeconfig: Path = Path()
    ca: Path = Path()
    extra_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (user, groups)
    apiserver_args: list[str] = field(default_factory=list)  # e.g. an audit log for the operator benchmark
    # Off for the kwok tier (no kubelet mounts tokens there); on for the real-node tier, whose pods
    # (the operator, the trainer's status hook) authenticate with their projected ServiceAccount token.
    service_account_admission: bool = False
    # The real-node tier's cluster network (tests/node/network.py): the address nodes and pods reach the API server
    # at (published in the `kubernetes` Service), and the unix socket of the HTTP CONNECT proxy through which the
    # API server reaches kubelets and pods there.
    advertise_address: str = "127.0.0.1"
    egress_proxy: Path | None = None
    # kwok and its simulated GPU node: the kwok tier's pods run there. Off where only real kubelets run pods.
    fake_gpu_node: bool = True

    @property
    def admin_token(self) -> str:
        return ADMIN_TOKEN

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.named[name], self.commands[name] = self.procs[-1], args

    def restart(self, name: str, down_seconds: float = 0) -> float:
        """Stop one component as a restart does (SIGTERM, SIGKILL after 15 s), start it again with the same
        command line after `down_seconds`; returns the seconds until it was back (the API server: ready)."""
        proc = self.named[name]
        stop_processes([proc])
        self.procs.remove(proc)
        started = time.monotonic()
        time.sleep(down_seconds)
        self._spawn(name, self.commands[name])
        if name == "kube-apiserver":
            self._wait(self._apiserver_ready, "kube-apiserver after its restart", timeout=90)
        return time.monotonic() - started

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """The component frozen (SIGSTOP) for the block: a disk or a node that stops answering, without a word."""
        pid = self.named[name].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def _apiserver_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        req = urllib.request.Request(f"{self.server}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return bool(urllib.request.urlopen(req, timeout=2, context=context).status == 200)

    def _spawn_serving(
        self, name: str, args: Callable[[int], list[str]], attempts: int = 3, timeout: float = 60
    ) -> None:
        """Start a component that serves /healthz on a free port and wait until it answers. Without the wait, a
        controller manager that died at start (its port taken between free_port() and its bind) left every
        Deployment without pods, and the failure surfaced minutes later as a `helm --wait` timeout."""
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its serving certificate is self-signed; only liveness is asked
        for _ in range(attempts):
            port = free_port()
            self._spawn(name, args(port))
            proc = self.procs[-1]

            def healthy(port: int = port) -> bool:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=2, context=insecure):
                    return True

            if self._until(healthy, timeout, proc):
                return
            if proc.poll() is None or "address already in use" not in self.log(name):
                break
            self.procs.remove(proc)
        self._fail(f"{name} serving /healthz", timeout)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start(self) -> ControlPlane:
        """Start every component; one that fails to start (or a Ctrl-C meanwhile) stops those already started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> ControlPlane:
        pki = write_pki(
            self.root / "pki",
            addresses=(self.advertise_address, KUBERNETES_SERVICE_IP),
            names=API_SERVER_NAMES,
        )
        self.ca = pki["ca"]
        etcd_port, peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(self.bin / "etcd"),
                "--data-dir",
                str(self.root / "etcd"),
                "--unsafe-no-fsync",
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer}",
            ],
        )
        self._wait(
            lambda: b"true" in urllib.request.urlopen(f"http://127.0.0.1:{etcd_port}/health", timeout=1).read(), "etcd"
        )
        tokens = self.root / "tokens.csv"
        rows = [f'{ADMIN_TOKEN},admin,admin,"system:masters"'] + [
            f'{t},{u},{u},"{g}"' for t, (u, g) in self.extra_tokens.items()
        ]
        tokens.write_text("\n".join(rows) + "\n")
        self.api_port = free_port()
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--advertise-address={self.advertise_address}",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.root / 'certs'}",
                f"--tls-cert-file={pki['cert']}",
                f"--tls-private-key-file={pki['key']}",
                f"--client-ca-file={pki['ca']}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki['sa_pub']}",
                f"--service-account-signing-key-file={pki['sa_key']}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--kubelet-client-certificate={pki['kubelet_client_cert']}",
                f"--kubelet-client-key={pki['kubelet_client_key']}",
                *self._egress_args(),
                "--allow-privileged=true",
                *([] if self.service_account_admission else ["--disable-admission-plugins=ServiceAccount"]),
                "--enable-priority-and-fairness=false",
                "--watch-cache=true",
                *self.apiserver_args,
            ],
        )
        self.kubeconfig = self.write_kubeconfig("admin", ADMIN_TOKEN)
        self._wait(self._apiserver_ready, "kube-apiserver", timeout=90)
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]
        self._spawn_serving(
            "kube-controller-manager",
            lambda port: [
                str(self.bin / "kube-controller-manager"),
                *common,
                f"--secure-port={port}",
                f"--service-account-private-key-file={pki['sa_key']}",
                f"--root-ca-file={pki['ca']}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam",
            ],
        )
        self._spawn_serving(
            "kube-scheduler", lambda port: [str(self.bin / "kube-scheduler"), *common, f"--secure-port={port}"]
        )
        if self.fake_gpu_node:
            self._start_kwok()
        return self

    def _start_kwok(self) -> None:
        self._spawn(
            "kwok",
            [
                str(self.bin / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.1.0/24",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                *[f"--config={p}" for p in self._stage_files()],
            ],
        )
        self.kubectl("apply", "-f", str(HERE / "fake-gpu-node.yaml"))
        self._wait(
            lambda: (
                "True"
                in self.kubectl(
                    "get", "node", "gpu-node-0", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
                )
            ),
            "fake node Ready",
            timeout=60,
        )

    def _egress_args(self) -> list[str]:
        if self.egress_proxy is None:
            return []
        config = self.root / "egress-selector.yaml"
        connection = {"proxyProtocol": "HTTPConnect", "transport": {"uds": {"udsName": str(self.egress_proxy)}}}
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "apiserver.k8s.io/v1beta1",
                    "kind": "EgressSelectorConfiguration",
                    "egressSelections": [{"name": "cluster", "connection": connection}],
                }
            )
        )
        # A node's name means nothing inside the cluster network (no DNS reaches the proxy): its address does.
        return [f"--egress-selector-config-file={config}", "--kubelet-preferred-address-types=InternalIP"]

    def _stage_files(self) -> list[Path]:
        stock = self.bin.parent / "kwok-stages"
        return [stock / rel for rel in STOCK_STAGES] + sorted((HERE / "stages").glob("*.yaml"))

    def write_kubeconfig(self, user: str, token: str, server: str = "") -> Path:
        """`server`: where the user reaches the API server, if not on 127.0.0.1 (a node in the cluster network)."""
        path = self.root / f"kubeconfig-{user.replace(':', '-')}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": server or self.server, "certificate-authority": str(self.ca)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True, stdin: str | None = None) -> str:
        kubectl = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or "kubectl"
        out = subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=stdin,
            check=False,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out.stdout if out.returncode == 0 else out.stdout + out.stderr

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Until every named CRD serves. Not `kubectl wait --for=condition=Established`: right after an
        apply, a CRD whose status has no conditions yet makes kubectl fail at once ('.status.conditions
        accessor error: <nil>') instead of waiting; it did on a cold machine, and every test of the tier
        errored."""

        def established() -> bool:
            jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
            return all(
                self.kubectl("get", "crd", crd, "-o", f"jsonpath={jsonpath}", check=False).strip() == "True"
                for crd in crds
            )

        self._wait(established, f"CRDs {', '.join(crds)} established", timeout=timeout)

    def _until(self, probe: Callable[[], object], timeout: float, proc: Process | None = None) -> bool:
        """Poll until `probe` returns true: False at the timeout, or as soon as `proc` has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (proc is None or proc.poll() is None):
            try:
                if probe():
                    return True
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            time.sleep(0.2)
        return False

    def _wait(self, probe: Callable[[], object], what: str, timeout: float = 30) -> None:
        if not self._until(probe, timeout):
            self._fail(what, timeout)

    def _fail(self, what: str, timeout: float) -> NoReturn:
        """Stop everything and raise with the log of every component started so far."""
        logs = "\n".join(f"--- {path.stem}\n{self.log(path.stem)}" for path in sorted(self.root.glob("*.log")))
        self.stop()
        raise RuntimeError(f"{what}: not ready in {timeout:.0f} s:\n{logs}")

    def stop(self) -> None:
        stop_processes(self.procs)
        shutil.rmtree(self.root, ignore_errors=True)


def stop_processes(procs: list[Process], timeout: float = 15) -> None:
    """SIGTERM each process group we started (newest first), SIGKILL what outlives `timeout`; empties `procs`."""
    for proc in reversed(procs):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended since
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    procs.clear()
