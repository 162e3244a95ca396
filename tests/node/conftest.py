"""The real-node tier: both images built from the project's Dockerfiles, a control plane with
ServiceAccount admission, and a real kubelet on containerd beside the kwok GPU node, on the cluster network
(tests/node/network.py): pods get addresses from the node's pod range and reach the API server through the
`kubernetes` Service, and S3 at the hub's address."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.controlplane.cluster import SERVICE_CIDR, ControlPlane, build, stop_processes
from tests.support import caches

from .docker_engine import REPO, BuiltImage, DockerEngine, build_all, ensure_base_image
from .docker_engine import missing_tools as missing_build_tools
from .kubelet import NodePool, RealNode, clone_root, ensure_pause_image, node_cache_error, node_name
from .kubelet import missing_tools as missing_node_tools
from .network import ClusterNetwork

REPO_CRDS = sorted((REPO / "crds").glob("*.yaml"))
NODES = 2


def _report(line: str) -> None:
    # Shown in the pytest output (-s not needed): the measured build and start times are the figures.
    sys.stderr.write(f"\n[node tier] {line}\n")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    missing = missing_build_tools() + missing_node_tools()
    if os.geteuid() != 0:
        pytest.skip("the node tier runs dockerd, containerd and a kubelet, which need root")
    if missing:
        pytest.fail(str(caches.missing(f"Debian's {', '.join(missing)}", caches.PACKAGES_STEP)))
    # Read from disk before any daemon starts: a missing image fails here in a second, not after builds.
    cache_error = node_cache_error()
    if cache_error is not None:
        pytest.fail(str(cache_error))
    engine = DockerEngine().start()
    yield engine
    engine.stop()


@dataclass(frozen=True)
class Images:
    base: str
    operator: BuiltImage
    trainer: BuiltImage


@pytest.fixture(scope="session")
def images(docker_engine: DockerEngine) -> Images:
    # Built by the setup stage (python -m tests.setup); here they are only looked up.
    base = ensure_base_image(docker_engine)
    built = build_all(docker_engine)
    for name, image in built.items():
        _report(f"{name} image {image.ref}: {image.size_bytes / 1e9:.2f} GB")
    return Images(base, built["operator"], built["trainer"])


@pytest.fixture(scope="session")
def cluster_network() -> Iterator[ClusterNetwork]:
    if os.geteuid() != 0:
        pytest.skip("the cluster network is made of network namespaces, which need root")
    network = ClusterNetwork(nodes=NODES, service_cidr=SERVICE_CIDR).create()
    yield network
    network.destroy()


@pytest.fixture(scope="session")
def egress_socket() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="finetune-egress-"))
    yield folder / "egress.sock"
    (folder / "egress.sock").unlink(missing_ok=True)
    folder.rmdir()


@pytest.fixture(scope="session")
def node_plane(cluster_network: ClusterNetwork, egress_socket: Path) -> Iterator[ControlPlane]:
    """A control plane of its own: ServiceAccount admission on, so the kubelet mounts projected tokens; published
    at the hub's address, and reaching kubelets and pods through the forwarder's egress proxy."""
    plane = ControlPlane(
        build(),
        service_account_admission=True,
        advertise_address=cluster_network.hub_ip,
        egress_proxy=egress_socket,
    ).start()
    try:
        for crd in REPO_CRDS:
            plane.kubectl("apply", "--server-side", "-f", str(crd))
        plane.wait_established(*(yaml.safe_load(crd.read_text())["metadata"]["name"] for crd in REPO_CRDS))
        yield plane
    finally:
        plane.stop()


@dataclass(frozen=True)
class PodView:
    """The host's services as pods see them, through the forwarder: S3 at the hub's address."""

    s3: str


@pytest.fixture(scope="session")
def pod_view(
    cluster_network: ClusterNetwork, node_plane: ControlPlane, egress_socket: Path, s3_endpoint: str
) -> Iterator[PodView]:
    """The forwarder: the API server and S3 at the hub's address, and the API server's egress into the hub."""
    from .forwarder import start

    hub, hub_ip = cluster_network.hub, cluster_network.hub_ip
    s3_port = urllib.parse.urlsplit(s3_endpoint).port
    forwarder = start(
        [(f"{hub}/{hub_ip}:{port}", f"127.0.0.1:{port}") for port in (node_plane.api_port, s3_port)],
        [(egress_socket, hub)],
        log=node_plane.root / "forwarder.log",
    )
    procs: list[subprocess.Popen[bytes]] = [forwarder]  # type: ignore[list-item]
    yield PodView(s3=f"http://{hub_ip}:{s3_port}")
    stop_processes(procs)


@pytest.fixture(scope="session")
def cluster_dns(
    node_plane: ControlPlane, cluster_network: ClusterNetwork, pod_view: PodView,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:  # fmt: skip
    from .cluster_dns import start_cluster_dns

    procs: list[subprocess.Popen[bytes]] = [
        start_cluster_dns(node_plane, cluster_network, tmp_path_factory.mktemp("coredns"))
    ]
    yield
    stop_processes(procs)


@pytest.fixture(scope="session")
def real_nodes(
    node_plane: ControlPlane, cluster_network: ClusterNetwork, pod_view: PodView, cluster_dns: None,
    docker_engine: DockerEngine, images: Images,
) -> Iterator[NodePool]:  # fmt: skip
    """NODES kubelets, each with its containerd in its own namespace; the others' containerd roots are copied from
    the first one's cached root (clone_root), so the setup stage imports each image once."""
    started = time.monotonic()
    ensure_pause_image(docker_engine, images.base)
    first = RealNode(node_plane, node_plane.bin, network=cluster_network, index=0, name=node_name(0))
    # The images are in the first root already: the docker_engine fixture refused to start otherwise.
    nodes = [first]
    clones = []
    try:
        for index in range(1, cluster_network.nodes):
            clone = Path(tempfile.mkdtemp(prefix=f"finetune-node-{index}-root-", dir="/var/tmp"))
            clones.append(clone)
            copying = time.monotonic()
            clone_root(first.root, clone)
            seconds = time.monotonic() - copying
            _report(f"{node_name(index)}'s containerd root copied from {first.name}'s in {seconds:.0f} s")
            nodes.append(RealNode(node_plane, node_plane.bin, root=clone, network=cluster_network, index=index,
                                  name=node_name(index)))  # fmt: skip
        for node in nodes:
            node.start()
        _report(f"{len(nodes)} kubelet nodes Ready in {time.monotonic() - started:.0f} s")
        yield NodePool(nodes)
    finally:
        for node in nodes:
            if node.procs:
                node.stop()
        for clone in clones:
            shutil.rmtree(clone, ignore_errors=True)
