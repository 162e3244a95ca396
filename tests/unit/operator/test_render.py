"""Rendering is pure and stable: golden files per example, security defaults, no secret values, idempotence.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from finetune_api.pod_contract import CONFIG_FILE, ENV_COLLECTIVE_TIMEOUT, TRACKING_CREDENTIALS, TRACKING_URI_ENV
from finetune_api.resolve import resolve_job
from finetune_api.validation import validate_document, validate_file
from finetune_operator.render import render
from finetune_operator.render.pod import shutdown_timeout
from finetune_operator.settings import OperatorSettings

# FineTuneJob examples; a FineTuneExperiment's variants render through the same code (test_experiment_plan.py).
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
EXAMPLES = [p for p in sorted(EXAMPLES_DIR.glob("*.yaml")) if "\nkind: FineTuneJob\n" in p.read_text()]
GOLDEN = Path(__file__).parent / "golden"
SETTINGS = OperatorSettings()


def _rendered(path: Path) -> list[dict[str, Any]]:
    job = validate_file(path)[0].job
    assert job is not None
    if job.metadata.namespace is None:
        job = job.model_copy(update={"metadata": job.metadata.model_copy(update={"namespace": "default"})})
    return list(render(resolve_job(job, pod=SETTINGS.pod_defaults), SETTINGS).objects)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_golden(path: Path) -> None:
    text = yaml.safe_dump_all(_rendered(path), sort_keys=False)
    golden = GOLDEN / f"{path.stem}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text, f"rendering of {path.name} changed; review and rerun with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_rendering_is_idempotent_and_secure(path: Path) -> None:
    first, second = _rendered(path), _rendered(path)
    assert first == second
    job = next(o for o in first if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        for env in container["env"]:
            if env["name"].startswith("AWS_"):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], "credentials only by reference"
    for obj in first:
        assert len(obj["metadata"]["name"]) <= 63
    # The only S3 material anywhere in the objects is the Secret's name and key names.
    assert "AKIA" not in json.dumps(first)


def test_multi_node_gets_indexed_job_and_headless_service() -> None:
    objs = _rendered(next(p for p in EXAMPLES if p.stem == "multinode-full-sft"))
    job = next(o for o in objs if o["kind"] == "Job")
    svc = next(o for o in objs if o["kind"] == "Service")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2 == job["spec"]["parallelism"]
    assert job["spec"]["template"]["spec"]["subdomain"] == svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{job['metadata']['name']}-0.{svc['metadata']['name']}"
    assert env["NNODES"]["value"] == "2"
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    assert job["spec"]["activeDeadlineSeconds"] == 24 * 3600


def test_pod_failure_policy_ends_user_errors_at_once() -> None:
    job = next(o for o in _rendered(EXAMPLES[0]) if o["kind"] == "Job")
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and set(rules[0]["onExitCodes"]["values"]) == {10, 11, 12, 15}
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


def test_trainer_status_grant_is_limited_to_its_own_job() -> None:
    objs = _rendered(EXAMPLES[0])
    role = next(o for o in objs if o["kind"] == "Role")
    (rule,) = role["rules"]
    assert rule["resources"] == ["finetunejobs/status"] and rule["verbs"] == ["get", "patch"]
    assert rule["resourceNames"] == [validate_file(EXAMPLES[0])[0].name]


def _pod_spec(resources: dict[str, Any]) -> dict[str, Any]:
    """The trainer pod of the README's job with other resources (the operator renders valid specs only)."""
    doc = yaml.safe_load((EXAMPLES_DIR / "tweets-lora.yaml").read_text())
    doc["spec"]["resources"] = resources
    doc["metadata"]["namespace"] = "default"
    result = validate_document(doc)
    assert result.errors == [] and result.job is not None, result.errors
    rendered = next(
        o for o in render(resolve_job(result.job, pod=SETTINGS.pod_defaults), SETTINGS).objects if o["kind"] == "Job"
    )
    return dict(rendered["spec"]["template"]["spec"])


def _trainer_container(resources: dict[str, Any]) -> dict[str, Any]:
    """The trainer container of the README's job with other resources."""
    return dict(_pod_spec(resources)["containers"][0])


def test_a_cpu_job_on_two_nodes_starts_one_torchrun_rank_per_pod() -> None:
    """Issue 20: `gpus: 0, nodes: 2` used to render two independent trainers (one process each, no group)."""
    container = _trainer_container({"gpus": 0, "nodes": 2})
    command = container["command"]
    assert command[:3] == ["python", "-m", "finetune_trainer.launch"], command
    assert command[-4:] == ["-m", "finetune_trainer", "--config", CONFIG_FILE]
    assert "--nproc_per_node=1" in command and "--max_restarts=0" in command
    assert f"--rdzv_conf=timeout={SETTINGS.rendezvous_timeout_seconds}" in command
    # Every $(VAR) the command names is set in the container, so the kubelet expands it.
    env = {e["name"] for e in container["env"]}
    named = {arg.split("$(")[1].split(")")[0] for arg in command if "$(" in arg}
    assert named == {"NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"} and named <= env
    # Every collective is bounded: a rank whose peer vanished fails, and the Job restarts the group.
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values[ENV_COLLECTIVE_TIMEOUT] == str(SETTINGS.collective_timeout_seconds)
    assert ENV_COLLECTIVE_TIMEOUT not in {e["name"] for e in _trainer_container({"gpus": 1})["env"]}
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])


def test_a_multi_node_job_places_one_rank_per_node() -> None:
    """Issue 20: the scheduler never packs two ranks onto one node while another node fits."""
    (spread,) = _pod_spec({"gpus": 0, "nodes": 2})["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    assert spread["whenUnsatisfiable"] == "DoNotSchedule", "a soft spread may still pack two ranks onto one node"
    assert spread["labelSelector"] == {"matchLabels": {"finetune.dev/job": "tweets-lora"}}
    assert "topologySpreadConstraints" not in _pod_spec({"gpus": 0})


def test_a_single_process_pod_runs_the_trainer_without_a_launcher() -> None:
    for resources in ({"gpus": 0}, {"gpus": 1}):
        command = _trainer_container(resources)["command"]
        assert command == ["python", "-m", "finetune_trainer", "--config", CONFIG_FILE], resources


def test_gpu_jobs_start_one_torchrun_rank_per_gpu_through_the_exit_code_keeping_launcher() -> None:
    """`accelerate launch` exited 1 for any failed rank, so the Job retried a data error like a crash."""
    one_node = _trainer_container({"gpus": 4})["command"]
    assert one_node[:4] == ["python", "-m", "finetune_trainer.launch", "--nproc_per_node=4"], one_node
    assert "--standalone" in one_node and not any("$(" in arg for arg in one_node)
    two_nodes = _trainer_container({"gpus": 8, "nodes": 2})["command"]
    assert two_nodes[:4] == ["python", "-m", "finetune_trainer.launch", "--nproc_per_node=8"], two_nodes
    assert "--nnodes=$(NNODES)" in two_nodes and "--standalone" not in two_nodes
    for command in (one_node, two_nodes):
        assert "accelerate" not in command and "--max_restarts=0" in command
        assert command[-4:] == ["-m", "finetune_trainer", "--config", CONFIG_FILE]


def test_torchrun_gives_a_sigtermed_rank_the_pods_grace_period_less_its_own_exit() -> None:
    """torchrun's default, 30 s, would SIGKILL a trainer still writing the checkpoint the pod's 120 s allow."""
    (arg,) = [a for a in _trainer_container({"gpus": 0, "nodes": 2})["command"] if a.startswith("--shutdown_timeout=")]
    waited = int(arg.split("=")[1])
    assert 30 < waited < SETTINGS.termination_grace_seconds, arg
    assert shutdown_timeout(5) >= 1


def _tracked_env(mlflow: dict[str, Any], settings: OperatorSettings) -> list[dict[str, Any]]:
    doc = yaml.safe_load((EXAMPLES_DIR / "tweets-lora.yaml").read_text())
    doc["spec"]["tracking"] = {"mlflow": mlflow}
    doc["metadata"]["namespace"] = "default"
    result = validate_document(doc)
    assert result.errors == [] and result.job is not None, result.errors
    job = next(o for o in render(resolve_job(result.job, pod=settings.pod_defaults), settings).objects
               if o["kind"] == "Job")  # fmt: skip
    return list(job["spec"]["template"]["spec"]["containers"][0]["env"])


def test_render_tracking_env() -> None:
    """Issue 24: the spec's server, else the chart's; credentials from the named Secret, by reference only."""
    chart = OperatorSettings(mlflow_uri="http://mlflow.mlops:5000")
    env = {e["name"]: e for e in _tracked_env({"experiment": "e"}, chart)}
    assert env[TRACKING_URI_ENV]["value"] == "http://mlflow.mlops:5000"
    assert not set(TRACKING_CREDENTIALS) & set(env), "no Secret named: no credential variables"
    own = {e["name"]: e for e in _tracked_env({"uri": "http://mine:5000", "secretRef": {"name": "ml"}}, chart)}
    assert own[TRACKING_URI_ENV]["value"] == "http://mine:5000"
    for var in TRACKING_CREDENTIALS:
        assert own[var] == {"name": var, "valueFrom": {"secretKeyRef": {"name": "ml", "key": var, "optional": True}}}
    untracked = {e["name"] for e in _pod_spec({"gpus": 0})["containers"][0]["env"]}
    assert TRACKING_URI_ENV not in untracked
