"""sync_status writes only what changed, and reuses what ensure() already read."""

from __future__ import annotations

from typing import Any

from finetune_operator.reconcile import Ensured, sync_status


class RecordingApi:
    """Answers the three reads sync_status makes from fixed objects and records every call."""

    def __init__(self, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> None:
        self.job, self.pods = job, pods
        self.calls: list[str] = []
        self.patches: list[dict[str, Any]] = []

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_job")
        return self.job

    def trainer_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        self.calls.append("trainer_pods")
        return self.pods

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls.append("patch_status")
        self.patches.append(status)


def _body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "j", "generation": 1}, "spec": {}, "status": status or {}}


RUNNING_JOB = {"spec": {}, "status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}}
RUNNING_POD = {
    "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
    "status": {"phase": "Running", "containerStatuses": [{"name": "trainer", "state": {"running": {}}}]},
}


def test_an_unchanged_status_is_not_written_again(monkeypatch: Any) -> None:
    import kopf

    monkeypatch.setattr(kopf, "info", lambda *a, **k: None)  # the phase-change Event needs no cluster here
    api = RecordingApi(RUNNING_JOB, [RUNNING_POD])
    sync_status(api, _body())  # type: ignore[arg-type]
    assert api.calls.count("patch_status") == 1 and api.patches[0]["phase"] == "Running"
    sync_status(api, _body(api.patches[0]))  # type: ignore[arg-type]
    assert api.calls.count("patch_status") == 1, "the same observation patched the status a second time"


def test_a_just_created_job_is_neither_read_again_nor_listed_for_pods(monkeypatch: Any) -> None:
    import kopf

    monkeypatch.setattr(kopf, "info", lambda *a, **k: None)
    api = RecordingApi(None, [])
    obs = sync_status(api, _body(), Ensured(job={"spec": {}, "status": {}}, created=True))  # type: ignore[arg-type]
    assert api.calls == ["patch_status"] and obs.phase.value in ("Pending", "Initializing")
