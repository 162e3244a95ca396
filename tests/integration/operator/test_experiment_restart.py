"""Restarting the operator while an experiment runs neither duplicates nor loses a variant."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.operator.in_process import in_process_operator, wait
from tests.integration.operator.test_experiment import NS, _experiment, _variant_jobs

pytestmark = pytest.mark.controlplane


def test_restart_keeps_the_variants(control_plane: Any) -> None:
    plane = control_plane
    with in_process_operator(plane, NS):
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(_experiment("restarted-ftx")))
        wait(lambda: len(_variant_jobs(plane, "restarted-ftx")) == 2, "two variants (maxParallel)", timeout=120)
    before = {j["metadata"]["name"]: j["metadata"]["uid"] for j in _variant_jobs(plane, "restarted-ftx")}
    with in_process_operator(plane, NS):
        time.sleep(10)  # the initial listing reconciles every experiment again
        after = {j["metadata"]["name"]: j["metadata"]["uid"] for j in _variant_jobs(plane, "restarted-ftx")}
        status = json.loads(plane.kubectl("get", "ftx", "restarted-ftx", "-n", NS, "-o", "json"))["status"]
    assert after == before, "the restart created, replaced or lost a variant's FineTuneJob"
    assert status["phase"] == "Running" and status["variantCount"] == 4
    assert [r["name"] for r in status["variants"]] == ["full", "layerwise-lr", "lora", "prompt-tuning"]
    assert [r.get("phase") is not None for r in status["variants"]] == [True, True, False, False]
