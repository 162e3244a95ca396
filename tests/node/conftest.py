"""The real-node tier: both images built from the project's Dockerfiles, and the cluster of tests/node/cluster.py
(a control plane with ServiceAccount admission, real kubelets on containerd, each node in its own namespace of the
cluster network): pods get addresses from their node's pod range and reach the API server through the
`kubernetes` Service, and S3 at the hub's address."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.support import caches

from .cluster import NodeCluster, PodMlflow, running_error
from .docker_engine import BuiltImage, DockerEngine, build_all, ensure_base_image
from .docker_engine import missing_tools as missing_build_tools
from .kubelet import ensure_pause_image, node_cache_error
from .kubelet import missing_tools as missing_node_tools

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
def node_cluster(docker_engine: DockerEngine, images: Images, s3_endpoint: str) -> Iterator[NodeCluster]:
    """NODES kubelets on the cluster network, with the control plane, the forwarder and CoreDNS: the cluster
    `python -m tests.node.cluster up` starts, from the same code (the operator is installed by the tests)."""
    busy = running_error()
    if busy:
        pytest.fail(busy)
    ensure_pause_image(docker_engine, images.base)
    cluster = NodeCluster.create(NODES, s3_endpoint, report=_report).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def node_plane(node_cluster: NodeCluster) -> ControlPlane:
    return node_cluster.plane


@pytest.fixture(scope="session")
def pod_mlflow(node_cluster: NodeCluster, mlflow_uri: str) -> Iterator[PodMlflow]:
    from tests.controlplane.cluster import stop_processes

    from .forwarder import start as start_forwarder

    port = int(mlflow_uri.rsplit(":", 1)[1])
    hub, hub_ip = node_cluster.network.hub, node_cluster.network.hub_ip
    forwarder = start_forwarder(
        [(f"{hub}/{hub_ip}:{port}", f"127.0.0.1:{port}")], log=node_cluster.plane.root / "mlflow-forwarder.log"
    )
    yield PodMlflow(mlflow_uri, f"http://{hub_ip}:{port}")
    stop_processes([forwarder])
