"""Trainer pods on the pod network, with extra environment from the settings that never overrides what the
operator sets itself; the port-free liveness heartbeat."""

from __future__ import annotations

import os
from pathlib import Path

from finetune_api.validation import validate_file
from finetune_operator.liveness import age_seconds
from finetune_operator.render.pod import pod_template
from finetune_operator.settings import OperatorSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml"


def _job() -> object:
    job = validate_file(EXAMPLE)[0].job
    assert job is not None
    return job


def test_defaults_keep_the_pod_network() -> None:
    spec = pod_template(_job(), OperatorSettings())["spec"]  # type: ignore[arg-type]
    assert "hostNetwork" not in spec and "dnsPolicy" not in spec


def test_extra_env_never_overrides_the_operators_own() -> None:
    settings = OperatorSettings(trainer_env={"NCCL_DEBUG": "INFO", "FINETUNE_WORK_DIR": "/elsewhere"})
    spec = pod_template(_job(), settings)["spec"]  # type: ignore[arg-type]
    assert "hostNetwork" not in spec
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["NCCL_DEBUG"] == "INFO"
    assert env["FINETUNE_WORK_DIR"] == "/work", "the operator's own variables are never overridden"
    names = [e["name"] for e in spec["containers"][0]["env"]]
    assert len(names) == len(set(names))


def test_extra_env_parses_from_the_chart_json() -> None:
    os.environ["FINETUNE_OPERATOR_TRAINER_ENV"] = '{"KUBERNETES_SERVICE_PORT": "6443"}'
    try:
        assert OperatorSettings().trainer_env == {"KUBERNETES_SERVICE_PORT": "6443"}
    finally:
        del os.environ["FINETUNE_OPERATOR_TRAINER_ENV"]


def test_heartbeat_age(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    assert age_seconds(beat) is None
    beat.touch()
    os.utime(beat, (1000.0, 1000.0))
    assert age_seconds(beat, now=1030.0) == 30.0


def test_the_collective_timeout_crosses_the_pod_boundary_or_falls_back_to_torchs() -> None:
    from finetune_api.pod_contract import (
        DEFAULT_COLLECTIVE_TIMEOUT_SECONDS,
        ENV_COLLECTIVE_TIMEOUT,
        collective_timeout_seconds,
    )

    assert collective_timeout_seconds({ENV_COLLECTIVE_TIMEOUT: "120"}) == 120
    for bad in ({}, {ENV_COLLECTIVE_TIMEOUT: "0"}, {ENV_COLLECTIVE_TIMEOUT: "soon"}):
        assert collective_timeout_seconds(bad) == DEFAULT_COLLECTIVE_TIMEOUT_SECONDS == 1800


def test_in_cluster_server_follows_the_kubelet_variables() -> None:
    from finetune_api.pod_contract import in_cluster_server

    assert in_cluster_server({}) == "https://kubernetes.default.svc"
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}) == (
        "https://127.0.0.1:6443"
    )
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}) == (
        "https://[fd00::1]:443"
    )
