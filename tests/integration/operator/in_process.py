"""The operator run in-process by kopf's test runner against the real control plane, and the kubectl
reads the operator tests share.

One launcher for every in-process operator: each test module used to set KUBECONFIG, the metrics port
and the namespace itself, and the restart tests imported private helpers from another test module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from finetune_operator.__main__ import kopf_args
from tests.conftest import wait_for
from tests.controlplane.cluster import EXIT_CODE_LABEL, HOLD_LABEL

REPO = Path(__file__).resolve().parents[3]
README_EXAMPLE = REPO / "examples" / "tweets-lora.yaml"
KOPF_ARGS = kopf_args(["--standalone"])


@contextmanager
def in_process_operator(
    plane: Any, namespace: str, *, kubeconfig: Path | None = None, timeout: float = 180
) -> Iterator[Any]:
    """kopf's runner with the operator's handlers, logged in with `kubeconfig` (the admin's by default).

    Yields the runner (its .output holds the operator's log). Leaving raises when the operator failed.
    """
    from kopf.testing import KopfRunner

    # The operator reads its settings when its run starts. Several runs share this process: none may bind
    # the default metrics port (the next would fail with "address already in use").
    env = {"KUBECONFIG": str(kubeconfig or plane.kubeconfig), "FINETUNE_OPERATOR_METRICS_PORT": "0"}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    plane.kubectl("create", "namespace", namespace, check=False)
    try:
        with KopfRunner(KOPF_ARGS, timeout=timeout) as runner:
            time.sleep(2)  # the initial listings and watches are open before a test acts
            yield runner
    finally:
        # KUBECONFIG stays the plane's: kopf's threads may still log in as the run winds down.
        previous["KUBECONFIG"] = previous["KUBECONFIG"] or str(plane.kubeconfig)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert runner.exception is None, runner.output[-3000:]


def example_job(name: str, namespace: str, *, hold: bool = False, exit_code: int | None = None) -> dict[str, Any]:
    """The README's FineTuneJob under another name and namespace.

    hold: kwok keeps its pods Running until the label goes; exit_code: kwok fails them with this code.
    """
    labels = {HOLD_LABEL: "true"} if hold else {}
    if exit_code is not None:
        labels[EXIT_CODE_LABEL] = str(exit_code)
    doc = yaml.safe_load(README_EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace, "labels": labels}
    return dict(doc)


def get_object(plane: Any, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    out = plane.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    try:
        return dict(json.loads(out))
    except ValueError:
        return None


def ftj_phase(plane: Any, name: str, namespace: str) -> str:
    return str(((get_object(plane, "ftj", name, namespace) or {}).get("status") or {}).get("phase", ""))


def wait(probe: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    return wait_for(probe, what, timeout)
