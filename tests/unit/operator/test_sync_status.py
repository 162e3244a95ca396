"""sync_status writes only what changed, from what was already seen, with no reads of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_operator.reconcile import Snapshot, sync_status


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
    seen = Snapshot(RUNNING_JOB, [RUNNING_POD])
    sync_status(api, _body(), seen)  # type: ignore[arg-type]
    assert api.calls == ["patch_status"] and api.patches[0]["phase"] == "Running"
    sync_status(api, _body(api.patches[0]), seen)  # type: ignore[arg-type]
    assert api.calls.count("patch_status") == 1, "the same observation patched the status a second time"


def test_a_just_created_job_is_not_read_again(monkeypatch: Any) -> None:
    import kopf

    from finetune_api.validation import validate_file
    from finetune_operator.reconcile import ensure
    from finetune_operator.settings import OperatorSettings

    monkeypatch.setattr(kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(kopf, "adopt", lambda *a, **k: None)

    class Applying(RecordingApi):
        def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(f"apply {obj['kind']}")
            return obj

    api = Applying(None, [])
    job = validate_file(Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml")[0].job
    assert job is not None
    seen = ensure(api, {"metadata": {}}, job, OperatorSettings())  # type: ignore[arg-type]
    assert api.calls[0] == "get_job" and "trainer_pods" not in api.calls and api.calls.count("get_job") == 1
    assert seen.job is not None and seen.job["kind"] == "Job" and seen.pods == []
