"""Shared fixtures: the shipped assets, a real S3 protocol server on 127.0.0.1, and job builders."""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.cluster import free_port
from tests.support.caches import CACHES_ONLY_ENV

REPO = Path(__file__).resolve().parents[1]
# Tests only use caches (python -m tests.setup builds them): a missing one fails its fixture at once
# with that command, in this process and in every trainer or operator process a test starts.
os.environ[CACHES_ONLY_ENV] = "1"

__all__ = ["free_port"]  # imported from here by the tests that start servers of their own


def _stop_like_ctrl_c(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    # A pytest stopped by SIGTERM (`timeout`, a cancelled CI job) died without teardown: the control plane,
    # dockerd, containerd and kubelets it started (each in its own session) ran on, holding ports and the
    # binaries. As Ctrl-C, pytest tears the session's fixtures down before it exits.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)


_TIER_SECONDS: dict[str, float] = {}


def _tier(nodeid: str) -> str:
    """A test's tier from its path: unit, integration/<area>, node, e2e."""
    parts = nodeid.split("::", 1)[0].split("/")
    if len(parts) > 3 and parts[1] == "integration":
        return f"integration/{parts[2]}"
    return parts[1] if len(parts) > 2 else parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Setup and teardown count too: a session fixture's start (a control plane, a node) is the tier's cost.
    tier = _tier(report.nodeid)
    _TIER_SECONDS[tier] = _TIER_SECONDS.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TIER_SECONDS:
        return
    terminalreporter.section("seconds per tier (setup, call and teardown)")
    for tier, seconds in sorted(_TIER_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {tier}")
    terminalreporter.write_line(f"{sum(_TIER_SECONDS.values()):8.1f} s  all tiers")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback, speaking the real S3 protocol to boto3."""
    from moto.server import ThreadedMotoServer

    from tests.support.s3 import default_credentials

    default_credentials()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def shipped_s3(s3_endpoint: str) -> str:
    """The shipped MiniLM and tweets uploaded where the examples expect them (s3://models, s3://data)."""
    from tests.support.s3 import upload_shipped

    upload_shipped(s3_endpoint)
    return s3_endpoint


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 (sqlite backend, local artifact root, artifacts served)."""
    from tests.support.mlflow_server import mlflow_server

    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def wait_for(
    probe: Callable[[], Any], what: str, timeout: float = 120, diagnose: Callable[[], str] = str, interval: float = 0.5
) -> Any:
    """Poll `probe` until it returns something truthy (and return that); fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout:.0f} s\n{diagnose()}")


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Any]:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1, with the CRD installed."""
    from tests.controlplane.cluster import ControlPlane, build

    plane = ControlPlane(build()).start()
    try:
        for crd in ("finetunejob", "finetuneexperiment"):
            plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds" / f"{crd}.yaml"))
            plane.wait_established(f"{crd}s.finetune.dev")
        yield plane
    finally:
        plane.stop()
