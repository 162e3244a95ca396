"""A real node for the test control plane: Debian's containerd and runc, and a kubelet and kube-proxy built like
the control plane.

Settings are the ones this machine kind needs (realnode.md): cgroup v1 with cgroupfs, no QoS cgroups, no negative
oom_score_adj (no CAP_SYS_RESOURCE in this sandbox), and a pause image of our own (no registry to pull one from).
On the cluster network (network.py) the node runs in its own namespace, registers with its address and puts its
pods on a bridge CNI; without it (the setup stage's image imports) only containerd runs, on the host's network.
Container logs are read from the kubelet's pod log folder.

Only the processes started here are ever stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.controlplane.cluster import (
    CLUSTER_DNS_IP,
    CLUSTER_DOMAIN,
    ControlPlane,
    Process,
    free_port,
    stop_processes,
)
from tests.support import visible
from tests.support.caches import CONTAINERD_STEP, IMAGES_STEP, MissingCache, caches_only, missing

from . import kueue
from .docker_engine import CACHE, DOCKER, IMAGES, DockerEngine, missing_images, tagged_images, unmount_under
from .network import (
    NETNS_DIR,
    POD_NET,
    POD_NETNS_PREFIX,
    ClusterNetwork,
    has_processes,
    in_netns,
    pod_netns,
    remove_namespaces,
)

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
CNI_BIN = Path("/usr/lib/cni")
NODE_LABEL = "finetune.dev/test-node"
PAUSE_IMAGE = "finetune-pause:node-test"
RUN_PREFIX = "finetune-node-"
K8S_NAMESPACE = "k8s.io"
CONTENT_STORE = "io.containerd.content.v1.content"
NODE_ROOT = CACHE / "node"  # containerd's root: the imported images survive for the next run
# The sandbox's only job is to hold the pod's namespaces until it is told to stop.
PAUSE_DOCKERFILE = """FROM {base}
ENTRYPOINT ["python3", "-c", "import signal; signal.signal(signal.SIGTERM, lambda *_: exit(0)); signal.pause()"]
"""


def missing_tools() -> list[str]:
    wanted = {
        CONTAINERD: "containerd",
        "/usr/sbin/runc": "runc",
        str(CNI_BIN / "loopback"): "containernetworking-plugins",
    }
    return [pkg for path, pkg in wanted.items() if not Path(path).exists()]


def ensure_pause_image(engine: DockerEngine, base: str) -> str:
    if not engine.has_image(PAUSE_IMAGE):
        if caches_only():
            raise missing(f"the pause image {PAUSE_IMAGE}", IMAGES_STEP)
        with tempfile.TemporaryDirectory() as ctx:
            (Path(ctx) / "Dockerfile").write_text(PAUSE_DOCKERFILE.format(base=base))
            engine.docker("build", "-t", PAUSE_IMAGE, ctx)
    return PAUSE_IMAGE


def _marker(root: Path, ref: str, image_id: str) -> Path:
    return root / "imported" / f"{ref.replace('/', '_').replace(':', '_')}-{image_id.removeprefix('sha256:')[:16]}"


def missing_imports(refs: tuple[str, ...], root: Path = NODE_ROOT, data_root: Path | None = None) -> list[str]:
    """The images whose current build is not in the node's containerd, read from disk (no daemon):
    the import marker of the image id the Docker engine has now, and containerd's blob of it."""
    tagged = tagged_images(data_root)
    blobs = root / "containerd" / CONTENT_STORE / "blobs" / "sha256"
    absent = []
    for ref in refs:
        image_id = tagged.get(ref)
        if (
            image_id is None
            or not _marker(root, ref, image_id).exists()
            or not (blobs / image_id.removeprefix("sha256:")).exists()
        ):
            absent.append(ref)
    return absent


def node_images() -> tuple[str, ...]:
    """Every image the node runs: the pause sandbox, the project's images and Kueue's controller manager."""
    return (PAUSE_IMAGE, *(ref for _, ref in IMAGES.values()), kueue.image())


def missing_node_images() -> list[str]:
    """The project's images not built from the current sources, and the pause and Kueue images if absent
    (from disk)."""
    tagged = tagged_images()
    return missing_images() + [ref for ref in (PAUSE_IMAGE, kueue.image()) if ref not in tagged]


def node_cache_error() -> MissingCache | None:
    """Why the node tier cannot start from its caches (naming the setup step that builds them), or None."""
    images = missing_node_images()
    if images:
        return missing(f"the images {', '.join(images)}", IMAGES_STEP)
    imports = missing_imports(node_images())
    if imports:
        return missing(f"the images {', '.join(imports)} in the node's containerd", CONTAINERD_STEP)
    return None


@dataclass
class RealNode:
    """Containerd with the project's images, and (from `start`) a kubelet joined to `plane`."""

    plane: ControlPlane | None
    bin: Path
    root: Path = NODE_ROOT
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=RUN_PREFIX)))
    procs: list[Process] = field(default_factory=list)
    name: str = field(default_factory=lambda: node_name(0))
    # On the cluster network: containerd, the kubelet and kube-proxy run in the node's namespace, and pods get
    # addresses from its pod range. Without it (the setup stage's imports) containerd runs on the host's.
    network: ClusterNetwork | None = None
    index: int = 0
    netns_before: set[str] = field(default_factory=set)

    @property
    def address(self) -> str | None:
        return self.network.node_ip(self.index) if self.network else None

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def pod_logs(self) -> Path:
        return self.run_dir / "pod-logs"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.run_dir / f"{name}.log").open("wb")
        prefix = in_netns(self.network.node(self.index)) if self.network else []
        self.procs.append(
            subprocess.Popen([*prefix, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.run_dir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def ctr(self, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [CTR, f"--address={self.containerd_socket}", f"--namespace={K8S_NAMESPACE}", *args],
            stdin=stdin,
            capture_output=True,
            check=False,
        )

    def _containerd_config(self) -> Path:
        cni_conf = self.run_dir / "cni"
        cni_conf.mkdir()
        (cni_conf / "10-pods.conflist").write_text(json.dumps(self._cni_network()))
        cri = {
            "sandbox_image": f"docker.io/library/{PAUSE_IMAGE}",
            "restrict_oom_score_adj": True,
            "disable_apparmor": True,
            "containerd": {
                "snapshotter": "overlayfs",
                "default_runtime_name": "runc",
                "runtimes": {"runc": {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": False}}},
            },
            "cni": {"bin_dir": str(CNI_BIN), "conf_dir": str(cni_conf)},
        }
        lines = [
            "version = 2",
            f'root = "{self.root / "containerd"}"',
            f'state = "{self.run_dir / "containerd-state"}"',
            'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
            '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
            "[grpc]",
            f'  address = "{self.containerd_socket}"',
            "[ttrpc]",
            f'  address = "{self.run_dir / "containerd.sock.ttrpc"}"',
            '[plugins."io.containerd.grpc.v1.cri"]',
            *_toml_table(cri, '[plugins."io.containerd.grpc.v1.cri"'),
        ]
        path = self.run_dir / "containerd.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _cni_network(self) -> dict[str, object]:
        if self.network is None:
            # Only loopback: pods run on the host network, but the kubelet reports NotReady until some CNI
            # config exists.
            return {"cniVersion": "1.0.0", "name": "loopback", "plugins": [{"type": "loopback"}]}
        # The node's pods on a bridge of their own, addressed from the node's pod range; the bridge is their
        # gateway, and the node routes onward (no masquerading: every address stays inside the cluster).
        ipam = {
            "type": "host-local",
            "ranges": [[{"subnet": self.network.pod_cidr(self.index)}]],
            "routes": [{"dst": "0.0.0.0/0"}],  # the node drops what is outside the cluster: it has no default
            "dataDir": str(self.run_dir / "cni-ipam"),  # not /var/lib/cni: each node leases its own range
        }
        bridge = {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True}
        return {"cniVersion": "1.0.0", "name": "pods", "plugins": [{**bridge, "ipam": ipam}]}

    def _kubelet_config(self) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": self.address or "127.0.0.1",
            "port": 10250 if self.network else free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            # Only the API server's client certificate (signed by the plane's CA) is let in: logs and exec.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.plane.ca) if self.plane else ""},
            },
            **({"clusterDNS": [CLUSTER_DNS_IP], "clusterDomain": CLUSTER_DOMAIN} if self.network else {}),
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(self.pod_logs),
            "serializeImagePulls": False,
            # The images are imported, never pulled: nothing may collect them, and a busy shared disk
            # must not evict the pods under test.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "5s",
            "fileCheckFrequency": "5s",
            "maxPods": 20,
        }
        path = self.run_dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _kube_proxy_config(self, kubeconfig: Path) -> Path:
        """iptables mode. Every Service connection is masqueraded, so a reply returns through the node that
        translated it (no br_netfilter assumptions); the conntrack sysctls are left as the namespace has them."""
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": str(POD_NET),
            "hostnameOverride": self.name,
            "bindAddress": self.address,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "iptables": {"masqueradeAll": True, "minSyncPeriod": "0s", "syncPeriod": "30s"},
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        path = self.run_dir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start_containerd(self) -> RealNode:
        """Containerd alone: enough to import images (the setup stage), and the first half of `start`."""
        user = root_user(self.root)
        if user is not None:
            # Two containerds on one root corrupt it, and this one would also delete the other's containers.
            raise RuntimeError(
                f"containerd {user} runs on {self.root} already (a cluster of `python -m tests.node.cluster up`, or "
                "another test session): stop it first (`python -m tests.node.cluster down`)"
            )
        self.netns_before = set(pod_netns())
        self.root.mkdir(parents=True, exist_ok=True)
        self.pod_logs.mkdir()
        self._spawn("containerd", [CONTAINERD, f"--config={self._containerd_config()}"])
        self._kill_orphaned_shims(earlier_runs=True)
        self._wait(lambda: self.ctr("version").returncode == 0, "containerd", 60)
        self._forget_old_pods()
        return self

    def start(self, timeout: float = 120) -> RealNode:
        plane = self.plane
        if plane is None:
            raise RuntimeError("a kubelet needs a control plane: RealNode(plane=None) runs containerd only")
        self.start_containerd()
        network = self.network
        server = f"https://{network.hub_ip}:{plane.api_port}" if network else ""
        kubeconfig = plane.write_kubeconfig(f"kubelet-{self.name}", plane.admin_token, server=server)
        self._spawn(
            "kubelet",
            [
                str(self.bin / "kubelet"),
                f"--config={self._kubelet_config()}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.run_dir / 'kubelet'}",
                f"--cert-dir={self.run_dir / 'kubelet-pki'}",
                f"--hostname-override={self.name}",
                f"--node-labels={NODE_LABEL}=true",
                *([f"--node-ip={self.address}"] if self.address else []),
                "--v=1",
            ],
        )
        if network is not None:
            self._spawn("kube-proxy", [str(self.bin / "kube-proxy"), f"--config={self._kube_proxy_config(kubeconfig)}"])

        def ready() -> bool:
            out = plane.kubectl(
                "get", "node", self.name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False
            )
            return out.strip() == "True"

        self._wait(ready, "kubelet node Ready", timeout)
        return self

    def _kill_orphaned_shims(self, earlier_runs: bool = False) -> None:
        """Shims started by this node's containerd (their command line names its socket), and their containers;
        with `earlier_runs`, those of earlier runs of this tier whose containerd is gone (a killed test session)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not args or not args[0].endswith(b"containerd-shim-runc-v2") or b"-address" not in args:
                continue
            socket_path = args[args.index(b"-address") + 1].decode()
            ours = socket_path == str(self.containerd_socket)
            stale = (
                earlier_runs and Path(socket_path).parent.name.startswith(RUN_PREFIX) and not Path(socket_path).exists()
            )
            if ours or stale:
                children = subprocess.run(
                    ["pgrep", "-P", proc.name], capture_output=True, text=True, check=False
                ).stdout.split()
                for pid in [*children, proc.name]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)

    def _forget_old_pods(self) -> None:
        """Containers a killed earlier run left in the cached root (a new control plane knows none of them), and
        the network namespaces of their pods."""
        pod_namespaces = self._pod_namespaces()
        listed = self.ctr("containers", "list", "--quiet")
        for cid in listed.stdout.decode().split():
            self.ctr("containers", "delete", cid)
        remove_namespaces(pod_namespaces)

    def _pod_namespaces(self) -> list[str]:
        """The network namespaces containerd made for this node's pods (/run/netns/cni-...), read from the OCI spec
        of each container: containerd leaves them behind when it stops before the kubelet has removed the pods."""
        found = set()
        for cid in self.ctr("containers", "list", "--quiet").stdout.decode().split():
            info = self.ctr("containers", "info", cid)
            try:
                namespaces = json.loads(info.stdout)["Spec"]["linux"]["namespaces"]
            except (ValueError, KeyError, TypeError):
                continue
            for ns in namespaces:
                path = Path(ns.get("path") or "")
                if ns.get("type") == "network" and path.parent == NETNS_DIR and path.name.startswith(POD_NETNS_PREFIX):
                    found.add(path.name)
        return sorted(found)

    def import_image(self, engine: DockerEngine, ref: str) -> float:
        """Copy an image from the Docker engine into containerd, unless this exact image is there already."""
        marker = _marker(self.root, ref, engine.image_id(ref))
        if (
            marker.exists()
            and f"docker.io/library/{ref}" in self.ctr("images", "list", "--quiet").stdout.decode().split()
        ):
            return 0.0
        if caches_only():
            raise missing(f"the image {ref} in the node's containerd", CONTAINERD_STEP)
        started = time.monotonic()
        save = subprocess.Popen([DOCKER, f"--host={engine.host}", "save", ref], stdout=subprocess.PIPE)
        assert save.stdout is not None
        with visible.current(CONTAINERD_STEP) as progress:
            progress.say(f"==> docker save {ref} | ctr images import")
            progress.run(
                [CTR, f"--address={self.containerd_socket}", f"--namespace={K8S_NAMESPACE}", "images", "import", "-"],
                stdin=save.stdout.fileno(),
                counted="lines from ctr",
            )
        if save.wait() != 0:
            raise RuntimeError(f"docker save {ref} failed ({save.returncode}) while importing it into containerd")
        marker.parent.mkdir(parents=True, exist_ok=True)
        for old in marker.parent.glob(f"{ref.replace('/', '_').replace(':', '_')}-*"):
            old.unlink()
        marker.touch()
        return time.monotonic() - started

    def log_files(self, namespace: str, pod: str, container: str) -> list[Path]:
        return sorted(self.pod_logs.glob(f"{namespace}_{pod}_*/{container}/*.log"))

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        """What a container printed, read from the kubelet's pod log folder (kept open, it outlives a deleted pod)."""
        return "\n".join(path.read_text(errors="replace") for path in self.log_files(namespace, pod, container))

    def _wait(self, probe: object, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if probe():  # type: ignore[operator]
                    return
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            time.sleep(0.5)
        logs = "\n".join(f"--- {n}\n{self.log(n)}" for n in ("containerd", "kubelet", "kube-proxy"))
        self.stop()
        raise RuntimeError(f"{what} not ready in {timeout}s:\n{logs}")

    def stop(self) -> None:
        """Stop what runs and remove the run folder (also that of a node that never started)."""
        if self.procs:
            self._stop_processes()
        # The kubelet's pod folders hold mounts (projected tokens, emptyDirs on tmpfs) left by pods.
        unmount_under(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _stop_processes(self) -> None:
        kubelet, containerd = self.procs[1:], self.procs[:1]
        stop_processes(kubelet, timeout=20)
        # Shims outlive containerd on purpose (containers survive a runtime restart): end every
        # container of this node before containerd, then any shim of ours that is left.
        if containerd and containerd[0].poll() is None:
            tasks = self.ctr("tasks", "list", "--quiet").stdout.decode().split()
            for task in tasks:
                self.ctr("tasks", "kill", "--signal=SIGKILL", "--all", task)
            for task in tasks:
                self.ctr("tasks", "delete", "--force", task)
        stop_processes(containerd, timeout=20)
        self._kill_orphaned_shims()
        # containerd leaves a stopped pod's network namespace pinned in /run/netns: those made while this node ran,
        # now empty of processes.
        remove_namespaces([n for n in pod_netns() if n not in self.netns_before and not has_processes(n)])
        self.procs.clear()


def root_user(root: Path) -> int | None:
    """The PID of a running containerd whose config names `root` as its root, if any."""
    wanted = f'root = "{root / "containerd"}"'
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args[0] != CONTAINERD:
            continue
        config = next((a.removeprefix("--config=") for a in args if a.startswith("--config=")), "")
        with contextlib.suppress(OSError):
            if config and wanted in Path(config).read_text().splitlines():
                return int(proc.name)
    return None


def node_name(index: int) -> str:
    return f"node-{index}"


def clone_root(source: Path, target: Path) -> None:
    """Another node's containerd root with the images the first one has. Only the content store's committed blobs
    are hard-linked (content-addressed, never opened for writing again); the rest is copied. A clone that also
    linked the unpacked layers left the first root's snapshots out of step with its metadata: its next image
    import failed with `parent snapshot ... does not exist`."""
    src, dst = source / "containerd", target / "containerd"
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name != CONTENT_STORE:
            subprocess.run(["cp", "-a", str(entry), str(dst / entry.name)], check=True)
    (dst / CONTENT_STORE / "ingest").mkdir(parents=True)  # partial writes stay each root's own
    subprocess.run(["cp", "-al", str(src / CONTENT_STORE / "blobs"), str(dst / CONTENT_STORE / "blobs")], check=True)


@dataclass
class NodePool:
    """The tier's kubelets; a pod's logs are read from the node it ran on, even after it is deleted."""

    nodes: list[RealNode]

    @property
    def names(self) -> set[str]:
        return {node.name for node in self.nodes}

    def log_files(self, namespace: str, pod: str, container: str) -> list[Path]:
        return [path for node in self.nodes for path in node.log_files(namespace, pod, container)]

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        return "\n".join(node.container_log(namespace, pod, container) for node in self.nodes).strip()

    def log(self, name: str, tail: int = 4000) -> str:
        return "\n".join(f"--- {node.name}: {name}\n{node.log(name, tail)}" for node in self.nodes)


def _toml_table(table: dict[str, object], prefix: str) -> list[str]:
    """The CRI plugin's settings as TOML (only what this config uses: strings, booleans, nested tables)."""
    scalars, tables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"  {key} = {json.dumps(value)}")
    out = scalars
    for key, value in tables:
        header = f"{prefix}.{key}"
        out.append(f"{header}]")
        out.extend(_toml_table(value, header))
    return out
