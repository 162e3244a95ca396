"""The cluster's DNS: CoreDNS (built from its Go module by tests/controlplane/build.sh) serving cluster.local from
the API server, inside the hub's namespace, behind the `kube-dns` Service the kubelets name as clusterDNS.

CoreDNS runs as a process of the cluster like the control plane, not as a pod: no image registry is reachable to
pull its image from. The Service has no selector; its EndpointSlice points at the hub's address, so kube-proxy
sends a pod's queries to 10.0.0.10 there. There is no `forward` plugin: a name outside the cluster gets an
answer from nobody, and no query leaves the cluster's namespaces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.controlplane.cluster import CLUSTER_DNS_IP, CLUSTER_DOMAIN, ControlPlane

from .network import ClusterNetwork, in_netns

DNS_PORT = 53
READY_PORT = 8181


def corefile(network: ClusterNetwork, kubeconfig: Path) -> str:
    return f"""\
.:{DNS_PORT} {{
    bind {network.hub_ip}
    ready 127.0.0.1:{READY_PORT}
    errors
    cache 5
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods verified
        ttl 5
    }}
}}
"""


def service_objects(network: ClusterNetwork) -> list[dict[str, object]]:
    ports = [{"name": f"dns-{p.lower()}", "port": DNS_PORT, "protocol": p} for p in ("UDP", "TCP")]
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {"clusterIP": CLUSTER_DNS_IP, "ports": ports},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-dns-hub",
                "namespace": "kube-system",
                "labels": {"kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": "tests"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [network.hub_ip], "conditions": {"ready": True}}],
            "ports": ports,
        },
    ]


def start_cluster_dns(plane: ControlPlane, network: ClusterNetwork, folder: Path) -> subprocess.Popen[bytes]:
    """CoreDNS in the hub, and the kube-dns Service in front of it; returns once CoreDNS reports ready."""
    kubeconfig = plane.write_kubeconfig(
        "coredns", plane.admin_token, server=f"https://{network.hub_ip}:{plane.api_port}"
    )
    config = folder / "Corefile"
    config.write_text(corefile(network, kubeconfig))
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(service_objects(network)))
    proc = subprocess.Popen(
        [*in_netns(network.hub), str(plane.bin / "coredns"), "-conf", str(config)],
        stdout=(folder / "coredns.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    probe = [*in_netns(network.hub), "python3", "-c", _READY_PROBE.format(port=READY_PORT)]
    if subprocess.run(probe, capture_output=True, timeout=90, check=False).returncode != 0:
        proc.kill()
        proc.wait()
        log = (folder / "coredns.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"CoreDNS not ready in 60 s:\n{log}")
    return proc


# Polls CoreDNS's ready plugin from inside the hub (its port is on the hub's loopback).
_READY_PROBE = """
import time, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen("http://127.0.0.1:{port}/ready", timeout=1).status == 200:
            raise SystemExit(0)
    except OSError:
        time.sleep(0.3)
raise SystemExit(1)
"""
