"""Kueue on the node tier's cluster, installed the way a platform team installs it: its own Helm chart (from the
module the Go step built it from), its controller manager in a real container, and its webhooks served with
the certificates its internal cert management makes and injects, called by the API server through the Service
(its egress reaches the pod network through the hub).

Then the queue a FineTuneJob names: a ResourceFlavor, a ClusterQueue whose CPU quota fits one trainer (so a
second waits, and a higher priority preempts), a LocalQueue in the jobs' namespace, and two
WorkloadPriorityClasses.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.cluster import HERE as CONTROLPLANE
from tests.controlplane.cluster import ControlPlane
from tests.support import caches

from .docker_engine import REPO, DockerEngine

KUEUE_NS = "kueue-system"
KUEUE_RELEASE = "kueue"
API = "kueue.x-k8s.io/v1beta2"
QUEUES = REPO / "examples" / "kueue" / "queues.yaml"  # the README's; the journeys run them with a CPU quota


def _named(kind: str) -> list[str]:
    return [d["metadata"]["name"] for d in yaml.safe_load_all(QUEUES.read_text()) if d and d["kind"] == kind]


(FLAVOR,) = _named("ResourceFlavor")
(CLUSTER_QUEUE,) = _named("ClusterQueue")
(LOCAL_QUEUE,) = _named("LocalQueue")
LOW, HIGH = _named("WorkloadPriorityClass")  # lowest first
# The controller manager's container: static, so it needs nothing beside it; Kueue's own image runs as 65532.
DOCKERFILE = """FROM scratch
COPY kueue /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
"""
MANAGER_CONFIG = {
    "apiVersion": "config.kueue.x-k8s.io/v1beta2",
    "kind": "Configuration",
    "health": {"healthProbeBindAddress": ":8081"},
    "metrics": {"bindAddress": ":8443"},
    "webhook": {"port": 9443},
    "leaderElection": {"leaderElect": False},  # one replica
    # Only batch/job: the operator's trainers are Jobs, and no other framework's CRDs are installed.
    "integrations": {"frameworks": ["batch/job"]},
}


def folder() -> Path:
    """Kueue's cache (bin/kueue, chart/), keyed by its version; build.sh's Go step fills it."""
    out = subprocess.run([str(CONTROLPLANE / "build.sh"), "--kueue"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def version() -> str:
    return folder().name


def image() -> str:
    return f"finetune-kueue:{version()}"


def missing() -> list[str]:
    kueue = folder()
    return [] if (kueue / "bin" / "kueue").is_file() and (kueue / "chart").is_dir() else [f"kueue in {kueue}"]


def ensure_image(engine: DockerEngine) -> str:
    """The controller manager's image, from the binary the Go step built (no registry is reachable)."""
    ref = image()
    if not engine.has_image(ref):
        if caches.caches_only():
            raise caches.missing(f"the Kueue image {ref}", caches.IMAGES_STEP)
        with tempfile.TemporaryDirectory() as ctx:
            (Path(ctx) / "Dockerfile").write_text(DOCKERFILE)
            (Path(ctx) / "kueue").write_bytes((folder() / "bin" / "kueue").read_bytes())
            (Path(ctx) / "kueue").chmod(0o755)
            engine.docker("build", "-t", ref, ctx)
    return ref


def chart_values(node_selector: dict[str, str]) -> dict[str, Any]:
    repository, tag = image().split(":")
    return {
        "controllerManager": {
            "manager": {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            },
            "nodeSelector": node_selector,
        },
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(MANAGER_CONFIG, sort_keys=False)},
    }


@dataclass(frozen=True)
class Installed:
    seconds: float  # helm install --wait, until the controller manager was Ready
    webhook_seconds: float  # then until its webhooks answered the API server (its certificate injected)


def install(plane: ControlPlane, node_selector: dict[str, str]) -> Installed:
    """`helm install --wait` of Kueue's chart, then wait until its webhooks serve: the first object the
    validating webhook admits is the ResourceFlavor every queue here uses."""
    from .cluster import helm

    values = plane.root / "kueue-values.yaml"
    values.write_text(yaml.safe_dump(chart_values(node_selector)))
    started = time.monotonic()
    helm(plane, "install", KUEUE_RELEASE, str(folder() / "chart"), "-n", KUEUE_NS, "--create-namespace",
         "-f", str(values), "--wait", "--timeout=300s", diagnose=lambda: diagnosis(plane))  # fmt: skip
    ready = time.monotonic()
    flavor = {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": FLAVOR}}
    last = ""
    while time.monotonic() - ready < 180:
        try:
            plane.kubectl("apply", "-f", "-", stdin=json.dumps(flavor))
        except RuntimeError as exc:  # "failed calling webhook": the certificate is not injected yet
            last = str(exc)
            time.sleep(2)
        else:
            return Installed(ready - started, time.monotonic() - ready)
    raise RuntimeError(f"Kueue's webhooks did not answer in 180 s: {last}\n{diagnosis(plane)}")


def diagnosis(plane: ControlPlane) -> str:
    lines = [plane.kubectl("get", "pods", "-n", KUEUE_NS, "-o", "wide", check=False)]
    lines.append(plane.kubectl("logs", "-n", KUEUE_NS, "deploy/kueue-controller-manager", "--tail=60", check=False))
    lines.append(plane.kubectl("get", "events", "-n", KUEUE_NS, "--sort-by=.lastTimestamp", check=False)[-3000:])
    return "\n".join(lines)


def queues(namespace: str, cpu: str, memory: str) -> list[dict[str, Any]]:
    """The README's queue objects (examples/kueue/queues.yaml), the LocalQueue in `namespace` and the
    ClusterQueue's quota `cpu` and `memory` (the nodes have no GPU)."""
    docs = [d for d in yaml.safe_load_all(QUEUES.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "LocalQueue":
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterQueue":
            quota = [{"name": "cpu", "nominalQuota": cpu}, {"name": "memory", "nominalQuota": memory}]
            (group,) = doc["spec"]["resourceGroups"]
            group["coveredResources"] = ["cpu", "memory"]
            group["flavors"] = [{"name": FLAVOR, "resources": quota}]
    return docs


def create_queues(plane: ControlPlane, namespace: str, cpu: str, memory: str) -> None:
    plane.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(doc) for doc in queues(namespace, cpu, memory)))


def uninstall(plane: ControlPlane) -> None:
    """The queue objects first, while Kueue still runs to lift its finalizers from them (and from the
    Workloads); then the chart, whose webhook configurations would otherwise outlive their server."""
    from .cluster import helm

    for kind in ("workloads", "localqueues", "clusterqueues", "resourceflavors", "workloadpriorityclasses"):
        plane.kubectl("delete", f"{kind}.kueue.x-k8s.io", "--all", "-A", "--wait=true", "--timeout=120s")

    helm(plane, "uninstall", KUEUE_RELEASE, "-n", KUEUE_NS, "--timeout=180s")
    # What later tests would trip over: an admission webhook whose server is gone (failurePolicy Fail).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hooks = plane.kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")
        if "kueue" not in hooks:
            return
        time.sleep(2)
    raise RuntimeError(f"Kueue's webhook configurations outlived its uninstall: {hooks}")
