"""Operator latency at scale on the real control plane (etcd, kube-apiserver, controller manager,
scheduler, kwok nodes): create N FineTuneJobs at once and time what follows.

    python -m benchmarks.operator                  # 200, then 1000 FineTuneJobs
    python -m benchmarks.operator --counts 50      # a short run

Reported per round: create -> Job created (p50, p99), create -> status Running (p50, p99), the
operator's API requests per FineTuneJob (from the API server's audit log), its CPU seconds and RSS.
The last line printed is a JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from finetune_api import GROUP, PLURAL, VERSION
from tests.controlplane.cluster import HOLD_LABEL, ControlPlane, build
from tests.controlplane.operator_process import OperatorProcess

from .process import OPERATOR_TOKEN, OPERATOR_USER, audit_args, count_requests, cpu_seconds, retries, rss_mib
from .watch import Clocks, Watchers, percentile

REPO = Path(__file__).resolve().parents[2]
PODS_PER_NODE = 250


def _nodes(plane: Any, count: int) -> None:
    """kwok nodes with room for every benchmark pod (the example asks for one GPU each)."""
    template = yaml.safe_load((REPO / "tests" / "controlplane" / "fake-gpu-node.yaml").read_text())
    room = {"cpu": "100000", "memory": "1000Ti", "pods": str(PODS_PER_NODE), "nvidia.com/gpu": str(PODS_PER_NODE)}
    docs = []
    for i in range(count):
        node = json.loads(json.dumps(template))
        node["metadata"]["name"] = f"bench-node-{i}"
        node["metadata"]["labels"]["kubernetes.io/hostname"] = f"bench-node-{i}"
        node["status"] = {"allocatable": room, "capacity": room}
        docs.append(node)
    plane.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def _finetunejob(name: str, namespace: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "tweets-lora.yaml").read_text())
    # kwok keeps pods carrying this label Running (tests/controlplane/stages), so "Running" is reached and held.
    doc["metadata"] = {"name": name, "namespace": namespace, "labels": {HOLD_LABEL: "true"}}
    return dict(doc)


def _round(plane: Any, operator: OperatorProcess, api_client: Any, count: int, timeout: float) -> dict[str, Any]:
    from finetune_operator.kube import KubeApi

    namespace = f"bench-{count}"
    plane.kubectl("create", "namespace", namespace)
    kube = KubeApi(api_client)  # plain JSON requests: the harness's own CPU is taken from the same cores
    clocks = Clocks()

    def create(name: str) -> None:
        body = _finetunejob(name, namespace)
        clocks.mark(clocks.sent, name)
        kube.request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", body=body)

    names = [f"ftj-{i:04d}" for i in range(count)]
    cpu_before = cpu_seconds(operator)
    with Watchers(api_client, namespace, clocks):
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(create, names))
        created = time.perf_counter() - start
        deadline = start + timeout
        while time.perf_counter() < deadline and (len(clocks.job_seen) < count or len(clocks.running_seen) < count):
            time.sleep(0.5)
        wall = time.perf_counter() - start
    time.sleep(2)  # the audit log is written asynchronously
    requests = count_requests(plane.root / "audit.log", namespace)
    to_job, to_running = clocks.latencies(clocks.job_seen), clocks.latencies(clocks.running_seen)
    rss, peak = rss_mib(operator)
    return {
        "finetunejobs": count,
        "create_seconds": round(created, 2),
        "jobs_created": len(to_job),
        "running": len(to_running),
        "create_to_job_p50_s": _round3(percentile(to_job, 0.5)),
        "create_to_job_p99_s": _round3(percentile(to_job, 0.99)),
        "create_to_running_p50_s": _round3(percentile(to_running, 0.5)),
        "create_to_running_p99_s": _round3(percentile(to_running, 0.99)),
        # Throughput, whatever the spread of single latencies: from the first create to the last Job.
        "first_create_to_last_job_s": _round3(clocks.span(clocks.job_seen)),
        "api_requests_per_job": round(sum(requests.values()) / count, 2),
        "reconcile_retries": retries(operator),
        "api_requests_by_verb": {k: round(v / count, 2) for k, v in sorted(requests.items())},
        "operator_cpu_s": round(cpu_seconds(operator) - cpu_before, 1),
        "operator_cpu_ms_per_job": round(1000 * (cpu_seconds(operator) - cpu_before) / count, 1),
        "operator_rss_mib": round(rss),
        "operator_peak_rss_mib": round(peak),
        "wall_s": round(wall, 1),
    }


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait per round")
    args = parser.parse_args()

    from kubernetes import config

    plane = ControlPlane(build(), extra_tokens={OPERATOR_TOKEN: (OPERATOR_USER, "system:masters")})
    plane.apiserver_args = audit_args(plane.root)
    operator: OperatorProcess | None = None
    try:
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds" / "finetunejob.yaml"))
        plane.wait_established("finetunejobs.finetune.dev")
        _nodes(plane, -(-sum(args.counts) // PODS_PER_NODE))
        kubeconfig = plane.write_kubeconfig(OPERATOR_USER, OPERATOR_TOKEN)
        log = Path(tempfile.mkdtemp(prefix="finetune-operator-bench-")) / "operator.log"
        print(f"operator log: {log}", flush=True)
        operator = OperatorProcess.start(kubeconfig, log, ["--standalone"])
        time.sleep(5)  # kopf has logged in and its watches are up
        api_client = config.new_client_from_config(str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        api_client.configuration.connection_pool_maxsize = 32
        rounds = []
        for count in args.counts:
            figures = _round(plane, operator, api_client, count, args.timeout)
            rounds.append(figures)
            print(
                f"{count} FineTuneJobs: create->Job p50 {figures['create_to_job_p50_s']} s, "
                f"p99 {figures['create_to_job_p99_s']} s; create->Running p50 {figures['create_to_running_p50_s']} s, "
                f"p99 {figures['create_to_running_p99_s']} s; creates took {figures['create_seconds']} s, "
                f"all Jobs {figures['first_create_to_last_job_s']} s; {figures['api_requests_per_job']} operator API "
                f"requests/job; operator CPU {figures['operator_cpu_ms_per_job']} ms/job, "
                f"RSS {figures['operator_rss_mib']} MiB",
                flush=True,
            )
        print(json.dumps({"rounds": rounds}))
        return 0
    finally:
        if operator:
            operator.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
