"""A real cluster on this machine, the node tier's: the cluster network (network.py), a control plane published
at the hub's address, the forwarder, CoreDNS and N kubelets on containerd, each node in its own namespace.

The node tier's fixtures start a NodeCluster in-process. The same code runs it from a shell, where kind cannot:

    source scripts/env.sh
    eval "$(python -m tests.node.cluster up --nodes 2)"   # + an S3 server and the operator installed by helm
    # `up --kueue` adds Kueue (its own chart) with a LocalQueue `fine-tuning` in default that fits one trainer
    kubectl get nodes; kubectl get pods -A
    python -m tests.node.cluster down                     # stops exactly what `up` started

`up` returns once the operator is Ready and prints `export` lines (KUBECONFIG, S3 as the shell and as pods see
it, the Secret with its keys, the trainer image); progress goes to stderr. What it started keeps running after
it exits, recorded in STATE_FILE: each process by its PID and start time (a PID reused since is never signalled),
the namespaces it made and its folders. `down` stops those processes and removes those namespaces and folders.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.cluster import (
    ROOT_PARENT,
    SERVICE_CIDR,
    AdoptedProcess,
    ControlPlane,
    Process,
    build,
    free_port,
    stop_processes,
)
from tests.support import caches

from .docker_engine import OPERATOR_IMAGE, REPO, TRAINER_IMAGE
from .kubelet import NODE_LABEL, NodePool, RealNode, clone_root, node_cache_error, node_name
from .network import ClusterNetwork

STATE_FILE = ROOT_PARENT / "finetune-cluster" / "state.json"
CHART = REPO / "charts" / "finetune-operator"
CRDS = sorted((REPO / "crds").glob("*.yaml"))
RELEASE = "ft"
RELEASE_NS = "finetune-system"
S3_SECRET = "s3-credentials"  # the name the examples' spec.s3.secretRef gives
# A rank waits at most this long in a collective for a vanished peer (the rank-kill test's bound; production's
# default is 30 minutes).
COLLECTIVE_TIMEOUT_SECONDS = 120


def _say(line: str) -> None:
    sys.stderr.write(f"[cluster] {line}\n")
    sys.stderr.flush()


@dataclass
class NodeCluster:
    network: ClusterNetwork
    egress: Path  # the unix socket of the API server's egress proxy (the forwarder serves it into the hub)
    plane: ControlPlane
    nodes: list[RealNode]
    s3: str  # the S3 server as the host sees it, on 127.0.0.1
    services: list[Process] = field(default_factory=list)  # the forwarder and CoreDNS (and S3, for `up`)
    folders: list[Path] = field(default_factory=list)  # removed at stop: the egress socket's, the nodes' copies
    report: Callable[[str], None] = _say

    @classmethod
    def create(cls, nodes: int, s3: str, report: Callable[[str], None] = _say) -> NodeCluster:
        """The cluster's parts, not started yet (folders are made, nothing runs)."""
        network = ClusterNetwork(nodes=nodes, service_cidr=SERVICE_CIDR)
        egress = Path(tempfile.mkdtemp(prefix="finetune-egress-")) / "egress.sock"
        plane = ControlPlane(
            build(),
            # The kubelet mounts projected ServiceAccount tokens, which the operator and the trainer use.
            service_account_admission=True,
            advertise_address=network.hub_ip,
            egress_proxy=egress,
            fake_gpu_node=False,  # pods run on the real nodes only
        )
        # The other nodes' containerd roots are copies of the first one's cached root (clone_root): the setup
        # stage imports each image once.
        clones = [Path(tempfile.mkdtemp(prefix=f"finetune-node-{i}-root-", dir="/var/tmp")) for i in range(1, nodes)]
        kubelets = [RealNode(plane, plane.bin, network=network, index=0, name=node_name(0))] + [
            RealNode(plane, plane.bin, root=root, network=network, index=i, name=node_name(i))
            for i, root in enumerate(clones, start=1)
        ]
        return cls(network, egress, plane, kubelets, s3, folders=[egress.parent, *clones], report=report)

    @property
    def pool(self) -> NodePool:
        return NodePool(self.nodes)

    @property
    def s3_port(self) -> int:
        return int(self.s3.rsplit(":", 1)[1].split("/")[0])

    @property
    def pod_s3(self) -> str:
        """S3 as pods see it: the forwarder listens at the hub's address."""
        return f"http://{self.network.hub_ip}:{self.s3_port}"

    def start(self) -> NodeCluster:
        """Start every part; one that fails (or a Ctrl-C meanwhile) stops those already started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> NodeCluster:
        from .cluster_dns import start_cluster_dns
        from .forwarder import start as start_forwarder

        started = time.monotonic()
        self.network.create()
        self.plane.start()
        for crd in CRDS:
            self.plane.kubectl("apply", "--server-side", "-f", str(crd))
        self.plane.wait_established(*(yaml.safe_load(crd.read_text())["metadata"]["name"] for crd in CRDS))
        self.report(f"control plane at {self.plane.server} (published at {self.network.hub_ip})")
        hub, hub_ip = self.network.hub, self.network.hub_ip
        # The API server and S3 at the hub's address, and the API server's egress into the hub.
        forwarder = start_forwarder(
            [(f"{hub}/{hub_ip}:{port}", f"127.0.0.1:{port}") for port in (self.plane.api_port, self.s3_port)],
            [(self.egress, hub)],
            log=self.plane.root / "forwarder.log",
        )
        self.services.append(forwarder)
        dns_folder = self.plane.root / "coredns"
        dns_folder.mkdir()
        self.services.append(start_cluster_dns(self.plane, self.network, dns_folder))
        for node in self.nodes[1:]:
            copying = time.monotonic()
            clone_root(self.nodes[0].root, node.root)
            self.report(f"{node.name}'s containerd root copied in {time.monotonic() - copying:.0f} s")
        for node in self.nodes:
            node.start()
        self.report(f"{len(self.nodes)} kubelet nodes Ready in {time.monotonic() - started:.0f} s")
        return self

    def stop(self) -> None:
        """Stop what runs (nodes first: their pods talk to the rest), then remove the namespaces and folders."""
        for node in self.nodes:
            node.stop()
        stop_processes(self.services)
        self.plane.stop()
        self.network.destroy()
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)

    def alive(self) -> bool:
        return any(proc.poll() is None for proc in [*self.plane.procs, *self.services])

    # What `up` leaves for `down`: enough to stop each process and remove each namespace and folder.
    def state(self) -> dict[str, Any]:
        def pids(procs: list[Process]) -> list[list[int]]:
            adopted = [p if isinstance(p, AdoptedProcess) else AdoptedProcess.of(p) for p in procs]
            return [[p.pid, p.started] for p in adopted]

        plane = self.plane
        return {
            "network": {"nodes": self.network.nodes, "prefix": self.network.prefix, "made": self.network.made},
            "egress": str(self.egress),
            "plane": {
                "bin": str(plane.bin),
                "root": str(plane.root),
                "api_port": plane.api_port,
                "kubeconfig": str(plane.kubeconfig),
                "ca": str(plane.ca),
                "procs": pids(plane.procs),
            },
            "nodes": [
                {
                    "name": node.name,
                    "index": node.index,
                    "root": str(node.root),
                    "run_dir": str(node.run_dir),
                    "netns_before": sorted(node.netns_before),
                    "procs": pids(node.procs),
                }
                for node in self.nodes
            ],
            "s3": self.s3,
            "services": pids(self.services),
            "folders": [str(folder) for folder in self.folders],
        }

    @classmethod
    def adopt(cls, state: dict[str, Any]) -> NodeCluster:
        def procs(rows: list[list[int]]) -> list[Process]:
            return [AdoptedProcess(pid, started) for pid, started in rows]

        net = state["network"]
        network = ClusterNetwork(net["nodes"], SERVICE_CIDR, prefix=net["prefix"], made=list(net["made"]))
        p = state["plane"]
        plane = ControlPlane(
            Path(p["bin"]), root=Path(p["root"]), procs=procs(p["procs"]), api_port=p["api_port"],
            kubeconfig=Path(p["kubeconfig"]), ca=Path(p["ca"]), advertise_address=network.hub_ip,
        )  # fmt: skip
        nodes = [_adopt_node(plane, network, n, procs(n["procs"])) for n in state["nodes"]]
        return cls(
            network, Path(state["egress"]), plane, nodes, state["s3"], services=procs(state["services"]),
            folders=[Path(f) for f in state["folders"]],
        )  # fmt: skip


def _adopt_node(plane: ControlPlane, network: ClusterNetwork, state: dict[str, Any], procs: list[Process]) -> RealNode:
    return RealNode(
        plane, plane.bin, root=Path(state["root"]), run_dir=Path(state["run_dir"]), procs=procs, name=state["name"],
        network=network, index=state["index"], netns_before=set(state["netns_before"]),
    )  # fmt: skip


def helm(plane: ControlPlane, *args: str, diagnose: Callable[[], str] = str) -> str:
    out = subprocess.run(
        [str(plane.bin / "helm"), f"--kubeconfig={plane.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed:\n{out.stdout}{out.stderr}{diagnose()}")
    return out.stdout


def pods_diagnosis(plane: ControlPlane, nodes: NodePool, namespace: str, container: str, selector: str = "") -> str:
    """What the selected pods went through: conditions, container states, the container's log, the
    namespace's events and the kubelet's log."""
    select = ["-l", selector] if selector else []
    pods = json.loads(plane.kubectl("get", "pods", "-n", namespace, *select, "-o", "json", check=False) or "{}")
    lines = []
    for pod in pods.get("items", []):
        name, status = pod["metadata"]["name"], pod.get("status", {})
        lines.append(f"pod {name}: conditions {status.get('conditions')}")
        lines.append(f"  containers {json.dumps(status.get('containerStatuses'), indent=1)}")
        lines.append(nodes.container_log(namespace, name, container)[-3000:])
    lines.append(plane.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)[-4000:])
    lines.append(nodes.log("kubelet", 3000))
    return "\n".join(lines)


def release_diagnosis(plane: ControlPlane, nodes: NodePool) -> str:
    """Why the operator's replicas did not become Ready: helm says only 'context deadline exceeded'."""
    lines = [plane.kubectl("get", "pods", "-n", RELEASE_NS, "-o", "wide", check=False)]
    lines.append(pods_diagnosis(plane, nodes, RELEASE_NS, "operator"))
    for name in sorted(nodes.names):
        node_doc = json.loads(plane.kubectl("get", "node", name, "-o", "json", check=False) or "{}")
        lines.append(f"node {name} conditions: {node_doc.get('status', {}).get('conditions')}")
        lines.append(f"node {name} taints: {node_doc.get('spec', {}).get('taints')}")
    # No pods at all points at the controller manager or scheduler, whose logs the plane keeps.
    lines += [f"--- {name}:\n{plane.log(name)[-2000:]}" for name in ("kube-controller-manager", "kube-scheduler")]
    return "\n".join(lines)


# `up --kueue`: the ClusterQueue's quota holds one trainer of chart_values' size (cpu 1, memory 8Gi), not two.
KUEUE_CPU_QUOTA = "1500m"
KUEUE_MEMORY_QUOTA = "12Gi"


def chart_values(replicas: int) -> dict[str, Any]:
    """The chart as a platform team installs it (no host network, no API server override), with the built
    images, which are imported into every node's containerd and never pulled."""
    repository, tag = OPERATOR_IMAGE.split(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "replicaCount": replicas,
        "nodeSelector": {NODE_LABEL: "true"},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "trainer": {
            "image": TRAINER_IMAGE,
            "imagePullPolicy": "Never",
            "collectiveTimeoutSeconds": COLLECTIVE_TIMEOUT_SECONDS,
            "defaultCpu": "1",
            # The README job's longest batch (32 tweets at their longest) peaks at 5.7 GB on CPU: at 4Gi it was
            # OOMKilled at its first step. Production's default is 16Gi.
            "defaultMemory": "8Gi",
            "workDirSize": "4Gi",
            "shmSize": "256Mi",
        },
    }


@dataclass(frozen=True)
class PodMlflow:
    """The tests' MLflow server (on 127.0.0.1), and the URL pods reach it at: the hub's address, forwarded."""

    url: str
    pod_url: str


def install_operator(cluster: NodeCluster, replicas: int, extra: dict[str, Any] | None = None) -> float:
    """`helm install --wait` of the chart (the CRDs are applied already: the chart adopts nothing it did not
    create), with `extra` values on top; returns the seconds until every replica was Ready."""
    plane = cluster.plane
    values = plane.root / "operator-values.yaml"
    values.write_text(yaml.safe_dump({**chart_values(replicas), **(extra or {})}))
    started = time.monotonic()
    helm(plane, "install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace", "-f", str(values),
         "--set", "crds.install=false", "--wait", "--timeout=300s",
         diagnose=lambda: release_diagnosis(plane, cluster.pool))  # fmt: skip
    return time.monotonic() - started


def uninstall_operator(plane: ControlPlane) -> None:
    helm(plane, "uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout=120s")


def create_s3_secret(plane: ControlPlane, namespace: str) -> None:
    """The Secret a FineTuneJob's spec.s3.secretRef names, holding the test S3 server's keys."""
    from tests.support.s3 import CREDENTIALS

    keys = [f"--from-literal={key}={value}" for key, value in CREDENTIALS.items()]
    plane.kubectl("create", "secret", "generic", S3_SECRET, "-n", namespace, *keys)


def exports(cluster: NodeCluster) -> dict[str, str]:
    from tests.support.s3 import CREDENTIALS, REGION

    return {
        "KUBECONFIG": str(cluster.plane.kubeconfig),
        "AWS_ENDPOINT_URL": cluster.s3,
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "FINETUNE_CLUSTER_S3_ENDPOINT": cluster.pod_s3,
        "FINETUNE_CLUSTER_S3_SECRET": S3_SECRET,
        "FINETUNE_TRAINER_IMAGE": TRAINER_IMAGE,
    }


def _running() -> NodeCluster | None:
    if not STATE_FILE.exists():
        return None
    return NodeCluster.adopt(json.loads(STATE_FILE.read_text()))


def running_error() -> str | None:
    """Why a new cluster must not start: one that `up` started still runs on the first node's cached root."""
    cluster = _running()
    if cluster is not None and cluster.alive():
        return (
            f"a cluster started by `python -m tests.node.cluster up` is running ({STATE_FILE}) on the node cache "
            "that this one would use: stop it with `python -m tests.node.cluster down` first"
        )
    return None


def add_kueue(cluster: NodeCluster, namespace: str) -> None:
    """Kueue's chart, and the queue of kueue.py (a CPU quota that fits one trainer of `up`'s size) in `namespace`."""
    from . import kueue

    installed = kueue.install(cluster.plane, {NODE_LABEL: "true"})
    waited = f"{installed.seconds:.0f} s for helm install --wait, its webhooks {installed.webhook_seconds:.0f} s later"
    _say(f"Kueue Ready ({waited})")
    trainer = chart_values(1)["trainer"]
    kueue.create_queues(cluster.plane, namespace, cpu=KUEUE_CPU_QUOTA, memory=KUEUE_MEMORY_QUOTA)
    _say(
        f"LocalQueue {namespace}/{kueue.LOCAL_QUEUE} -> ClusterQueue {kueue.CLUSTER_QUEUE} (cpu {KUEUE_CPU_QUOTA}, "
        f"memory {KUEUE_MEMORY_QUOTA}: one trainer of cpu {trainer['defaultCpu']}, memory {trainer['defaultMemory']}); "
        f"WorkloadPriorityClasses {kueue.LOW}, {kueue.HIGH}"
    )


def up(nodes: int, with_kueue: bool = False) -> int:
    from tests.support.s3 import default_credentials, start_server_process, upload_shipped

    if os.geteuid() != 0:
        _say("the cluster runs containerd, kubelets and network namespaces, which need root")
        return 1
    busy = running_error()
    if busy:
        _say(busy)
        return 1
    down(quiet=True)  # what a killed earlier `up` left
    default_credentials()
    with caches.only_caches():  # a cache that is not built is named with the command that builds it, at once
        problem = node_cache_error()
        if problem is not None:
            _say(str(problem))
            return 1
        started = time.monotonic()
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cluster = NodeCluster.create(nodes, f"http://127.0.0.1:{port}")
        try:
            cluster.services.append(start_server_process(port, STATE_FILE.parent / "s3.log"))
            upload_shipped(cluster.s3)
            _say(f"S3 at {cluster.s3} with the shipped model and data (s3://models, s3://data)")
            cluster.start()
            STATE_FILE.write_text(json.dumps(cluster.state(), indent=1))  # from here on, `down` can stop it
            create_s3_secret(cluster.plane, "default")
            seconds = install_operator(cluster, replicas=1)
            _say(f"operator Ready ({seconds:.0f} s for helm install --wait)")
            if with_kueue:
                add_kueue(cluster, "default")
        except BaseException:
            cluster.stop()
            shutil.rmtree(STATE_FILE.parent, ignore_errors=True)
            raise
    _say(f"cluster up in {time.monotonic() - started:.0f} s; stop it with `python -m tests.node.cluster down`")
    for key, value in exports(cluster).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def down(quiet: bool = False) -> int:
    cluster = _running()
    if cluster is None:
        if not quiet:
            _say("no cluster to stop")
        return 0
    namespaces = list(cluster.network.made)
    cluster.stop()
    shutil.rmtree(STATE_FILE.parent)
    _say(f"stopped; namespaces removed: {', '.join(namespaces)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.node.cluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the cluster and print `export` lines for eval")
    start.add_argument("--nodes", type=int, default=2, help="kubelet nodes (default 2)")
    start.add_argument(
        "--kueue", action="store_true", help="also install Kueue (its chart) with a queue that fits one trainer"
    )
    commands.add_parser("down", help="stop what `up` started and remove its namespaces")
    args = parser.parse_args(argv)
    return up(args.nodes, args.kueue) if args.command == "up" else down()


if __name__ == "__main__":
    raise SystemExit(main())
