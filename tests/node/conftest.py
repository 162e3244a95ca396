"""The real-node tier: both images built from the project's Dockerfiles, a control plane with
ServiceAccount admission, and a real kubelet on containerd beside the kwok GPU node."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.controlplane.cluster import ControlPlane, build
from tests.support import caches

from .docker_engine import REPO, BuiltImage, DockerEngine, build_all, ensure_base_image
from .docker_engine import missing_tools as missing_build_tools
from .kubelet import RealNode, ensure_pause_image, node_cache_error, node_images
from .kubelet import missing_tools as missing_node_tools

REPO_CRDS = sorted((REPO / "crds").glob("*.yaml"))


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
def node_plane() -> Iterator[ControlPlane]:
    """A control plane of its own: ServiceAccount admission on, so the kubelet mounts projected tokens."""
    plane = ControlPlane(build(), service_account_admission=True).start()
    try:
        for crd in REPO_CRDS:
            plane.kubectl("apply", "--server-side", "-f", str(crd))
        plane.wait_established(*(yaml.safe_load(crd.read_text())["metadata"]["name"] for crd in REPO_CRDS))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def real_node(node_plane: ControlPlane, docker_engine: DockerEngine, images: Images) -> Iterator[RealNode]:
    started = time.monotonic()
    node = RealNode(node_plane, node_plane.bin)
    node.root.mkdir(parents=True, exist_ok=True)
    ensure_pause_image(docker_engine, images.base)
    node.start()
    _report(f"kubelet node {node.name} Ready in {time.monotonic() - started:.0f} s")
    try:
        for ref in node_images():
            node.import_image(docker_engine, ref)
        yield node
    finally:
        node.stop()
