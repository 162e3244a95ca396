"""The cluster's network namespaces and the forwarder between them and the host: TCP flows node to node, host
to hub and hub to host, the API server's egress proxy reaches a node, and nothing has a way out (the rule)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.cluster import SERVICE_CIDR, free_port, stop_processes

from .forwarder import Endpoint, start
from .network import NETNS_DIR, ClusterNetwork, in_netns, ip, namespaces

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def network() -> Iterator[ClusterNetwork]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    net = ClusterNetwork(nodes=2, service_cidr=SERVICE_CIDR).create()
    yield net
    net.destroy()


def _echo_server(netns: str, host: str, port: int) -> subprocess.Popen[str]:
    """A one-line echo server inside `netns` that prints `listening` once bound."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_server(({host!r},{port}))\n"
        "print('listening',flush=True)\n"
        "while True:\n"
        "    c,a=s.accept(); c.sendall(b'echo:'+c.recv(100)+b' from '+a[0].encode()); c.close()\n"
    )
    proc = subprocess.Popen([*in_netns(netns), sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    return proc


def _ask(netns: str, host: str, port: int, payload: str = "hi") -> str:
    code = (
        "import socket\n"
        f"s=socket.create_connection(({host!r},{port}),timeout=5); s.sendall({payload.encode()!r})\n"
        "print(s.recv(200).decode())\n"
    )
    command = [*in_netns(netns), sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nodes_reach_each_other_and_the_hub(network: ClusterNetwork) -> None:
    server = _echo_server(network.node(1), network.node_ip(1), 7001)
    try:
        assert _ask(network.node(0), network.node_ip(1), 7001) == f"echo:hi from {network.node_ip(0)}"
        assert _ask(network.hub, network.node_ip(1), 7001) == f"echo:hi from {network.hub_ip}"
    finally:
        server.kill()


def test_the_forwarder_joins_the_hosts_loopback_and_the_hub_both_ways(network: ClusterNetwork) -> None:
    # Host -> cluster: the tests reach a server inside node 0 on 127.0.0.1.
    inside = _echo_server(network.node(0), network.node_ip(0), 7002)
    # Cluster -> host: a node reaches a server on the host's 127.0.0.1 through the hub's address.
    host_port = free_port()
    outside = socket.create_server(("127.0.0.1", host_port))

    def serve_once() -> None:
        conn, _ = outside.accept()
        conn.sendall(b"host:" + conn.recv(100))
        conn.close()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    local = free_port()
    forwarder = start(
        [
            (f"127.0.0.1:{local}", f"{network.node(0)}/{network.node_ip(0)}:7002"),
            (f"{network.hub}/{network.hub_ip}:7003", f"127.0.0.1:{host_port}"),
        ]
    )
    try:
        with socket.create_connection(("127.0.0.1", local), timeout=5) as sock:
            sock.sendall(b"in")
            assert sock.recv(200) == f"echo:in from {network.node_ip(0)}".encode()
        assert _ask(network.node(1), network.hub_ip, 7003, "out") == "host:out"
        thread.join(5)
    finally:
        stop_processes([forwarder])
        inside.kill()
        outside.close()


def test_the_connect_proxy_dials_inside_the_hub(network: ClusterNetwork, tmp_path: Path) -> None:
    """The API server's egress (kubectl logs, exec, webhooks) reaches node addresses this way."""
    server = _echo_server(network.node(1), network.node_ip(1), 7004)
    proxy_socket = tmp_path / "egress.sock"
    forwarder = start([], [(proxy_socket, network.hub)])
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(proxy_socket))
            sock.sendall(f"CONNECT {network.node_ip(1)}:7004 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(200).startswith(b"HTTP/1.1 200"), "the proxy refused a node address"
            sock.sendall(b"via-proxy")
            assert sock.recv(200) == f"echo:via-proxy from {network.hub_ip}".encode()
        # A name is refused, never looked up: the host's resolver is outside the cluster's namespaces.
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(proxy_socket))
            sock.sendall(b"CONNECT node-0:10250 HTTP/1.1\r\n\r\n")
            assert sock.recv(200).startswith(b"HTTP/1.1 502"), "the proxy dialled a name"
    finally:
        stop_processes([forwarder])
        server.kill()


def test_nothing_has_a_way_out_of_the_clusters_namespaces(network: ClusterNetwork) -> None:
    assert network.leaks() == []
    # Nothing routes beyond the cluster: the kernel refuses before a packet is made.
    for netns in (network.hub, network.node(0)):
        refused = ip("route", "get", "192.0.2.1", netns=netns, check=False)
        assert refused.returncode != 0 and "unreachable" in refused.stderr, refused
    # The check sees each way out it is there to catch (made and removed again inside node 1, never the host).
    node = network.node(1)
    ip("route", "add", "default", "via", network.hub_ip, netns=node)
    ip("link", "add", "stray0", "type", "veth", "peer", "name", "stray1", netns=node)
    try:
        found = network.leaks()
        assert any("route to default" in f for f in found), found
        assert any("stray0" in f and "peer is in this same namespace" in f for f in found), found
    finally:
        ip("route", "del", "default", netns=node)
        ip("link", "del", "stray0", netns=node)
    assert network.leaks() == []


def test_destroy_removes_every_namespace_it_made() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    net = ClusterNetwork(nodes=1, service_cidr=SERVICE_CIDR, prefix=f"fcn{os.getpid()}-destroyed").create()
    made = list(net.made)
    assert set(made) <= set(namespaces()) and len(made) == 2
    net.destroy()
    assert not any((NETNS_DIR / name).exists() for name in made)


def test_endpoints_parse_with_and_without_a_namespace() -> None:
    assert Endpoint.parse("127.0.0.1:80") == Endpoint("-", "127.0.0.1", 80)
    assert Endpoint.parse("fcn1-hub/10.250.0.1:6443") == Endpoint("fcn1-hub", "10.250.0.1", 6443)
