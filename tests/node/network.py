"""The cluster's network, inside network namespaces the tests make, and how the network rule is kept.

    host namespace (untouched: no interface, address or route is added to it)
      the control plane, S3 and the tests, on 127.0.0.1
      the forwarder: 127.0.0.1 <-> the hub's address, and the API server's egress into the hub
    <prefix>-hub      bridge `nodes`, 10.250.0.1/24: the nodes' network; routes to every node's pods
    <prefix>-n<i>     `eth0` 10.250.0.<11+i>/24 on that bridge; containerd, the kubelet and kube-proxy run
                      here, and the bridge CNI puts the node's pods on `cni0`, 10.244.<i>.0/24

The rule (traffic goes only to 127.0.0.1 or to namespaces the tests made) holds by construction: each
namespace's interfaces are its loopback and veths whose other end is in another of these namespaces, and
no namespace has a route beyond the node network, the pod network and the Service range. `leaks()` checks
exactly that, and the tests assert it is empty.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")
PREFIX = "fcn"  # every namespace made here: fcn<pid>-...; a dead pid's are removed by the next run
NODE_NET = ipaddress.ip_network("10.250.0.0/24")
POD_NET = ipaddress.ip_network("10.244.0.0/16")
HUB_BRIDGE = "nodes"
POD_NETNS_PREFIX = "cni-"  # containerd's name for a pod's network namespace
_made = itertools.count()


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done


def in_netns(netns: str) -> list[str]:
    """The command prefix that runs a program inside `netns`. Not `ip netns exec`: that also makes a mount
    namespace with a sysfs of its own, in which the kubelet finds no cgroup mounts and refuses to start."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--"]


def namespaces() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def pod_netns() -> list[str]:
    """The namespaces containerd pins in /run/netns for pods, on any node."""
    return [name for name in namespaces() if name.startswith(POD_NETNS_PREFIX)]


def remove_namespaces(names: list[str]) -> None:
    for name in names:
        ip("netns", "delete", name, check=False)


def remove_stale() -> list[str]:
    """Namespaces an earlier, killed run left (the process that made them is gone, and nothing runs inside them);
    returns their names. A cluster that `python -m tests.node.cluster up` left running outlives its maker, but its
    namespaces hold its daemons."""
    removed = []
    for name in namespaces():
        owner = name.removeprefix(PREFIX).split("-", 1)[0]
        if (
            name.startswith(PREFIX)
            and owner.isdigit()
            and not Path(f"/proc/{owner}").exists()
            and not has_processes(name)
        ):
            removed.append(name)
    remove_namespaces(removed)
    return removed


def has_processes(netns: str) -> bool:
    return bool(ip("netns", "pids", netns, check=False).stdout.strip())


@dataclass
class ClusterNetwork:
    nodes: int
    service_cidr: str
    prefix: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-{next(_made)}")
    made: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    @property
    def hub_ip(self) -> str:
        return str(NODE_NET.network_address + 1)

    def node(self, index: int) -> str:
        return f"{self.prefix}-n{index}"

    def node_ip(self, index: int) -> str:
        return str(NODE_NET.network_address + 11 + index)

    def pod_cidr(self, index: int) -> str:
        return str(list(POD_NET.subnets(new_prefix=24))[index])

    def create(self) -> ClusterNetwork:
        """Make the namespaces and wire them; on failure remove what was made."""
        remove_stale()
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.made.append(name)
        ip("link", "set", "lo", "up", netns=name)
        # The hub and the nodes route between the node network, the pods and the Services.
        subprocess.run([*in_netns(name), "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)

    def _create(self) -> None:
        self._add_namespace(self.hub)
        ip("link", "add", HUB_BRIDGE, "type", "bridge", netns=self.hub)
        ip("addr", "add", f"{self.hub_ip}/{NODE_NET.prefixlen}", "dev", HUB_BRIDGE, netns=self.hub)
        ip("link", "set", HUB_BRIDGE, "up", netns=self.hub)
        for index in range(self.nodes):
            name = self.node(index)
            self._add_namespace(name)
            port = f"n{index}"  # the node's port on the hub's bridge
            ip("link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", port, "netns", self.hub)
            ip("link", "set", port, "master", HUB_BRIDGE, "up", netns=self.hub)
            ip("addr", "add", f"{self.node_ip(index)}/{NODE_NET.prefixlen}", "dev", "eth0", netns=name)
            ip("link", "set", "eth0", "up", netns=name)
            ip("route", "add", self.service_cidr, "via", self.hub_ip, netns=name)
            # The hub routes each node's pods to that node; kube-proxy masquerades what it DNATs, so
            # replies come back the way they went.
            ip("route", "add", self.pod_cidr(index), "via", self.node_ip(index), netns=self.hub)
            for other in range(self.nodes):
                if other != index:
                    ip("route", "add", self.pod_cidr(other), "via", self.node_ip(other), netns=name)
        # The API server's egress proxy runs in the hub: it reaches Services through the first node's kube-proxy.
        if self.nodes:
            ip("route", "add", self.service_cidr, "via", self.node_ip(0), netns=self.hub)

    def destroy(self) -> None:
        """Remove every namespace made here (their veths go with them). Processes inside must be stopped first."""
        remove_namespaces(list(reversed(self.made)))
        self.made.clear()

    def allowed(self) -> list[ipaddress.IPv4Network]:
        return [NODE_NET, POD_NET, ipaddress.ip_network(self.service_cidr)]

    def pod_namespaces(self) -> list[str]:
        """The namespaces containerd made for pods on these nodes: each of its veths leads into a node's namespace."""
        found = []
        for name in pod_netns():
            ids = _named_ids(name)
            peers = [ids.get(link.get("link_netnsid", -1)) for link in _links(name) if _kind(link) == "veth"]
            if peers and all(peer in self.made for peer in peers):
                found.append(name)
        return found

    def leaks(self) -> list[str]:
        """Ways out of the cluster's namespaces (the pods' included): an interface that is neither loopback, a
        bridge, nor a veth whose other end is in one of them; a route to anything but the node network, the pod
        network and the Services (a pod's default route leads to its node's bridge, whose node has none)."""
        found = []
        pods = self.pod_namespaces()
        ours = set(self.made) | set(pods)
        for name in [*self.made, *pods]:
            ids = _named_ids(name)
            for link in _links(name):
                kind = _kind(link)
                label = f"{name}: interface {link['ifname']}"
                if link["ifname"] == "lo" or kind == "bridge":
                    continue
                if kind != "veth":
                    found.append(f"{label} is a {kind or 'device'}, not a veth between the cluster's namespaces")
                elif "link_netnsid" not in link:
                    found.append(f"{label}: its peer is in this same namespace")
                elif ids.get(link["link_netnsid"]) not in ours:
                    found.append(f"{label}: its peer is in namespace id {link['link_netnsid']}, not one made here")
            for route in json.loads(ip("-j", "route", "show", "table", "all", netns=name).stdout or "[]"):
                dst = route.get("dst", "")
                if route.get("type") in ("local", "broadcast", "multicast") or dst.startswith(("fe80", "ff00")):
                    continue
                if dst == "default" and name in pods and _inside(route.get("gateway", ""), POD_NET):
                    continue
                if dst == "default" or not any(
                    ipaddress.ip_network(dst, strict=False).subnet_of(net) for net in self.allowed()
                ):
                    found.append(f"{name}: route to {dst}")
        return found


def _links(netns: str) -> list[dict[str, Any]]:
    return list(json.loads(ip("-j", "-d", "link", "show", netns=netns).stdout or "[]"))


def _kind(link: dict[str, Any]) -> str | None:
    info = link.get("linkinfo", {})
    return info.get("info_kind") if isinstance(info, dict) else None


def _inside(address: str, network: ipaddress.IPv4Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


def _named_ids(netns: str) -> dict[int, str]:
    """The ids by which `netns` knows the other named namespaces (how a veth's far end is named)."""
    out = {}
    for line in ip("netns", "list-id", netns=netns).stdout.splitlines():
        parts = line.replace("(", " ").replace(")", " ").split()
        # nsid 1 iproute2 netns name: fcn123-hub
        if len(parts) >= 2 and parts[0] == "nsid" and parts[1].isdigit() and "name:" in parts:
            out[int(parts[1])] = parts[parts.index("name:") + 1]
    return out
