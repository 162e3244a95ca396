"""sync_status writes only what changed, from what was already seen, with no reads of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_api.v1alpha1.job import FineTuneJob
from finetune_api.validation import validate_file
from finetune_operator.reconcile import Snapshot, sync_status
from finetune_operator.resource import Observed

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml"


class RecordingApi:
    """Answers the three reads sync_status makes from fixed objects and records every call."""

    def __init__(self, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> None:
        self.job, self.pods = job, pods
        self.calls: list[str] = []
        self.events: list[tuple[str, str]] = []
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

    def record_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))


def _body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "j", "generation": 1}, "spec": {}, "status": status or {}}


def _example() -> FineTuneJob:
    job = validate_file(EXAMPLE)[0].job
    assert job is not None
    return job


def _sync(api: RecordingApi, status: dict[str, Any] | None, seen: Snapshot) -> None:
    sync_status(api, Observed.of(_body(status)), _example(), seen)  # type: ignore[arg-type]


RUNNING_JOB = {"spec": {}, "status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}}
RUNNING_POD = {
    "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
    "status": {"phase": "Running", "containerStatuses": [{"name": "trainer", "state": {"running": {}}}]},
}


def test_an_unchanged_status_is_not_written_again() -> None:
    api = RecordingApi(RUNNING_JOB, [RUNNING_POD])
    seen = Snapshot(RUNNING_JOB, [RUNNING_POD])
    _sync(api, None, seen)
    assert api.calls == ["patch_status"] and api.patches[0]["phase"] == "Running"
    _sync(api, api.patches[0], seen)
    assert api.calls.count("patch_status") == 1, "the same observation patched the status a second time"
    assert len(api.events) == 1 and api.events[0][0] == "Normal", "one Event for the one phase change"


SUCCEEDED_JOB = {
    "spec": {},
    "status": {
        "succeeded": 1,
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:10:00Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    },
}


def test_success_names_the_output_and_leaves_the_trainers_progress_alone() -> None:
    # The trainer's last write: its own fields only. The operator must not rewrite them at success.
    trainer_fields = {
        "progress": {"step": 200, "totalSteps": 200, "percent": 100, "summary": "100% 200/200"},
        "metrics": {"metricName": "accuracy", "evalMetric": 0.71},
        "lastCheckpoint": "s3://models/out/tweets-lora/checkpoints/step-000000200",
    }
    running = {"phase": "Running", "jobName": "j", "observedGeneration": 1, **trainer_fields}
    api = RecordingApi(SUCCEEDED_JOB, [])
    _sync(api, running, Snapshot(SUCCEEDED_JOB, []))
    patch = api.patches[-1]
    assert patch["phase"] == "Succeeded"
    assert patch["output"] == {
        "uri": "s3://models/out/tweets-lora/",
        "manifest": "s3://models/out/tweets-lora/manifest.json",
    }
    assert not set(trainer_fields) & set(patch), f"the operator wrote the trainer's fields: {sorted(patch)}"
    assert patch["completionTime"] == "2026-01-01T00:10:00Z" and patch["startTime"] == "2026-01-01T00:00:00Z"


def test_no_output_before_success() -> None:
    api = RecordingApi(RUNNING_JOB, [RUNNING_POD])
    _sync(api, None, Snapshot(RUNNING_JOB, [RUNNING_POD]))
    assert "output" not in api.patches[-1]


class Applying(RecordingApi):
    """Also applies and creates; a create answers None (409) when `job` already exists."""

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"apply {obj['kind']}")
        return obj

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(f"create {obj['kind']}")
        return None if self.job is not None else obj

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.calls.append(f"suspend {suspend}")


def _ensure(api: Applying, body: dict[str, Any], monkeypatch: Any) -> Snapshot:
    import kopf

    from finetune_operator.reconcile import ensure
    from finetune_operator.settings import OperatorSettings

    monkeypatch.setattr(kopf, "adopt", lambda *a, **k: None)
    return ensure(api, Observed.of(body), _example(), OperatorSettings())  # type: ignore[arg-type]


def test_a_just_created_job_is_not_read_again(monkeypatch: Any) -> None:
    api = Applying(None, [])
    seen = _ensure(api, {"metadata": {}}, monkeypatch)
    # A first reconcile (no jobName in the status) creates without reading; the Job comes last.
    assert "get_job" not in api.calls and "trainer_pods" not in api.calls, api.calls
    assert api.calls[-1] == "create Job" and api.calls.count("create Job") == 1, api.calls
    assert seen.job is not None and seen.job["kind"] == "Job" and seen.pods == []
    assert api.events == [], "one Event per phase change, and that is sync_status's"


def test_a_job_the_status_never_named_is_read_and_kept(monkeypatch: Any) -> None:
    # An earlier reconcile created the Job and stopped before its status write: the create answers 409.
    existing = {"kind": "Job", "metadata": {"uid": "u1"}, "spec": {"suspend": False}, "status": {}}
    api = Applying(existing, [RUNNING_POD])
    seen = _ensure(api, {"metadata": {}}, monkeypatch)
    assert api.calls[-3:] == ["create Job", "get_job", "trainer_pods"], api.calls
    assert seen.job is existing and seen.pods == [RUNNING_POD] and api.events == []


def test_a_named_job_is_read_first_and_its_suspension_follows_the_spec(monkeypatch: Any) -> None:
    existing = {"kind": "Job", "metadata": {"uid": "u1"}, "spec": {"suspend": True}, "status": {}}
    api = Applying(existing, [])
    _ensure(api, {"metadata": {}, "status": {"jobName": "tweets-lora"}}, monkeypatch)
    assert api.calls[0] == "get_job" and "create Job" not in api.calls, api.calls
    assert "suspend False" in api.calls, "the example is not suspended: the Job is resumed"


def test_the_trainers_storage_report_becomes_conditions_and_events_once() -> None:
    from finetune_operator.reconcile import needs_status_sync

    api = RecordingApi(RUNNING_JOB, [RUNNING_POD])
    seen = Snapshot(RUNNING_JOB, [RUNNING_POD])
    _sync(api, None, seen)
    running = api.patches[-1]
    failing = "checkpoint step 20 was not saved (upload s3://b/ck: InternalError); training goes on"
    # The trainer writes its report; the watch event of that write asks for a status sync.
    reported = {**running, "storage": {"retries": 7, "checkpointsFailing": failing}}
    assert needs_status_sync("MODIFIED", _body(reported))
    _sync(api, reported, seen)
    conds = {c["type"]: c for c in api.patches[-1]["conditions"]}
    assert conds["CheckpointsFailing"]["status"] == "True" and conds["CheckpointsFailing"]["message"] == failing
    assert conds["StorageRetrying"]["status"] == "False"
    assert ("Warning", "CheckpointsFailing") in api.events
    shown = {**reported, "conditions": api.patches[-1]["conditions"]}
    assert not needs_status_sync("MODIFIED", _body(shown)), "a report already shown asked for another sync"

    # Checkpoints are saved again: the condition clears, with an Event that says so.
    recovered = {**shown, "storage": {"retries": 7}}
    assert needs_status_sync("MODIFIED", _body(recovered))
    _sync(api, recovered, seen)
    conds = {c["type"]: c for c in api.patches[-1]["conditions"]}
    assert conds["CheckpointsFailing"]["status"] == "False"
    assert ("Normal", "CheckpointsSaved") in api.events
    assert [e for e in api.events if e[1] == "CheckpointsFailing"] == [("Warning", "CheckpointsFailing")]


def test_a_failing_tracking_server_becomes_a_condition_and_clears() -> None:
    """Issue 24: the trainer's status.tracking.failing shows as TrackingFailing, with Events on both edges."""
    from finetune_operator.reconcile import needs_status_sync

    api = RecordingApi(RUNNING_JOB, [RUNNING_POD])
    seen = Snapshot(RUNNING_JOB, [RUNNING_POD])
    _sync(api, None, seen)
    failing = "MLflow at http://mlflow:5000 failed on metrics of step 4: timed out; training goes on without it"
    reported = {**api.patches[-1], "tracking": {"runId": "abc", "failing": failing}}
    assert needs_status_sync("MODIFIED", _body(reported))
    _sync(api, reported, seen)
    conds = {c["type"]: c for c in api.patches[-1]["conditions"]}
    assert conds["TrackingFailing"]["status"] == "True" and conds["TrackingFailing"]["message"] == failing
    assert ("Warning", "TrackingFailing") in api.events
    recovered = {**reported, "conditions": api.patches[-1]["conditions"], "tracking": {"runId": "abc"}}
    assert needs_status_sync("MODIFIED", _body(recovered))
    _sync(api, recovered, seen)
    assert {c["type"]: c["status"] for c in api.patches[-1]["conditions"]}["TrackingFailing"] == "False"
    assert ("Normal", "TrackingRecovered") in api.events
