"""`python -m tests.node.cluster up` and `down` as a user runs them: a cluster with the operator Ready, the printed
exports working from the shell and from a pod, a second `up` refused, and `down` stopping exactly what `up`
started. Runs before the tier's own cluster starts (this file sorts first), which shares the first node's root."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.controlplane.cluster import AdoptedProcess
from tests.support.s3 import CREDENTIALS

from .cluster import RELEASE_NS, S3_SECRET, STATE_FILE
from .docker_engine import TRAINER_IMAGE
from .network import namespaces

pytestmark = pytest.mark.node
COMMAND = [sys.executable, "-m", "tests.node.cluster"]


def _exports(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, f"every line on stdout is an export to eval: {line!r}"
        key, value = words[1].split("=", 1)
        found[key] = value
    return found


def _kubectl(env: dict[str, str], *args: str) -> str:
    kubectl = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or "kubectl"
    done = subprocess.run([kubectl, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_up_starts_a_cluster_with_the_operator_ready_and_down_stops_exactly_that(
    docker_engine: object, images: object
) -> None:
    # The fixtures only check that the images are built and imported: `up` itself starts no Docker engine.
    before = set(namespaces())
    started = time.monotonic()
    up = subprocess.run([*COMMAND, "up", "--nodes", "1"], capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - started
    state = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    try:
        assert up.returncode == 0, up.stderr
        sys.stderr.write(f"\n[node tier] python -m tests.node.cluster up --nodes 1: {seconds:.0f} s\n")
        exports = _exports(up.stdout)
        assert {
            **CREDENTIALS,
            "FINETUNE_CLUSTER_S3_SECRET": S3_SECRET,
            "FINETUNE_TRAINER_IMAGE": TRAINER_IMAGE,
        }.items() <= exports.items()
        env = {**os.environ, **exports}

        # The operator is Ready when `up` returns, and kubectl reaches it with the printed KUBECONFIG.
        deploy = json.loads(_kubectl(env, "get", "deployment", "-n", RELEASE_NS, "-o", "json"))["items"]
        assert [d["status"].get("readyReplicas") for d in deploy] == [1], deploy
        (node,) = json.loads(_kubectl(env, "get", "nodes", "-o", "json"))["items"]
        assert node["spec"].get("taints") is None and "kwok" not in json.dumps(node["metadata"]), "only real nodes"
        secret = json.loads(_kubectl(env, "get", "secret", S3_SECRET, "-n", "default", "-o", "json"))
        assert set(secret["data"]) == set(CREDENTIALS), "the Secret holds the keys spec.s3.secretRef reads"

        # S3 from the shell (AWS_ENDPOINT_URL and the keys), with the shipped model where the examples name it.
        import boto3

        s3 = boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        listed = s3.list_objects_v2(Bucket="models", Prefix="all-minilm-l6-v2/")
        assert any(o["Key"].endswith("model.safetensors") for o in listed.get("Contents", [])), listed

        # S3 from a pod, at the endpoint a FineTuneJob names: the operator's own container asks it.
        endpoint = exports["FINETUNE_CLUSTER_S3_ENDPOINT"]
        code = f"import urllib.request; print(urllib.request.urlopen('{endpoint}/models', timeout=10).status)"
        pod = _kubectl(env, "get", "pods", "-n", RELEASE_NS, "-o", "jsonpath={.items[0].metadata.name}")
        assert _kubectl(env, "exec", "-n", RELEASE_NS, pod, "--", "python", "-c", code).strip() == "200"

        # A second cluster would share the first node's containerd root: refused, and the first one keeps running.
        again = subprocess.run([*COMMAND, "up"], capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode == 1 and "down" in again.stderr, again.stderr
        assert json.loads(STATE_FILE.read_text()) == state
    finally:
        down = subprocess.run([*COMMAND, "down"], capture_output=True, text=True, timeout=300, check=False)
    assert down.returncode == 0, down.stderr
    recorded = [
        AdoptedProcess(pid, ticks)
        for group in (state["plane"]["procs"], state["services"], *(n["procs"] for n in state["nodes"]))
        for pid, ticks in group
    ]
    # etcd, the API server, the controller manager and the scheduler; S3, the forwarder and CoreDNS; the node's
    # containerd, kubelet and kube-proxy.
    assert len(recorded) == 10, recorded
    assert [p.pid for p in recorded if p.poll() is None] == [], "down stopped every process up started"
    assert set(namespaces()) <= before, f"down removed the namespaces up made: {set(namespaces()) - before}"
    for folder in [state["plane"]["root"], *state["folders"], *(n["run_dir"] for n in state["nodes"])]:
        assert not Path(folder).exists(), folder
    assert not STATE_FILE.exists()
