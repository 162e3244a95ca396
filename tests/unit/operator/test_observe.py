"""Status comes from observed state: the Job's conditions and the pods' terminated states."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from finetune_api.v1alpha1.enums import FailureClass, Phase
from finetune_api.v1alpha1.job import FineTuneJob
from finetune_operator.resource import Observed
from finetune_operator.status.conditions import conditions
from finetune_operator.status.kueue import NOT_SEEN, kueue_view
from finetune_operator.status.observe import observe

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-lora.yaml"


def _job(**status: Any) -> dict[str, Any]:
    return {"spec": {}, "status": status}


def _pod(phase: str, **container_state: Any) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": phase, "containerStatuses": [{"name": "trainer", "state": container_state}]},
    }


def test_no_job_yet_is_pending() -> None:
    assert observe(None, []).phase == Phase.PENDING


def test_complete_job_succeeds() -> None:
    obs = observe(
        _job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}], startTime="t0", completionTime="t1"), []
    )
    assert obs.phase == Phase.SUCCEEDED and obs.attempts == 1 and obs.completion_time == "t1"


def test_failure_class_comes_from_exit_code_and_termination_message() -> None:
    message = json.dumps({"reason": "DataError", "message": "train.csv has no column 'label'"})
    pod = _pod("Failed", terminated={"exitCode": 11, "message": message, "reason": "Error"})
    job = _job(failed=1, conditions=[{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}])
    obs = observe(job, [pod])
    assert obs.phase == Phase.FAILED and obs.failure == FailureClass.DATA_ERROR
    assert obs.exit_code == 11 and obs.message == "train.csv has no column 'label'"


def test_oom_killed_is_out_of_memory() -> None:
    pod = _pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})
    obs = observe(
        _job(failed=4, conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]), [pod]
    )
    assert obs.failure == FailureClass.OUT_OF_MEMORY and obs.attempts == 4


def test_an_oom_kill_names_the_limit_and_the_fix_before_the_logs_tail() -> None:
    """The kubelet's fallback (the log's tail) alone left the user reading tokenizer noise for the cause."""
    logs = "noise from a library\ndata: rows read 33509\n\nbaseline: {'eval_accuracy': 0.18}\n"
    logs += "parameters: 148,611 trainable\n"
    pod = _pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled", "message": logs})
    pod["spec"] = {"containers": [{"name": "trainer", "resources": {"limits": {"memory": "4Gi"}}}]}
    failed = _job(failed=1, conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}])
    message = observe(failed, [pod]).message
    assert message.startswith("the trainer was killed at its memory limit of 4Gi (OOMKilled): raise "
                              "spec.resources.memory, or lower spec.training.batchSize")  # fmt: skip
    assert message.endswith(
        "Its last log lines: data: rows read 33509 | baseline: {'eval_accuracy': 0.18} | parameters: 148,611 trainable"
    )
    assert "noise" not in message


def test_deadline_exceeded() -> None:
    obs = observe(_job(conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]), [])
    assert obs.failure == FailureClass.DEADLINE_EXCEEDED


def test_image_pull_errors_and_unschedulable_pods() -> None:
    backoff = _pod("Pending", waiting={"reason": "ImagePullBackOff", "message": "pull access denied"})
    assert observe(_job(active=1), [backoff]).reason == "ImagePullError"
    assert observe(_job(active=1), [backoff]).phase == Phase.PENDING
    invalid = _pod("Pending", waiting={"reason": "InvalidImageName", "message": "bad ref"})
    assert observe(_job(active=1), [invalid]).phase == Phase.FAILED
    unschedulable = {
        "metadata": {},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes have nvidia.com/gpu",
                }
            ],
        },
    }
    obs = observe(_job(active=1), [unschedulable])
    assert obs.phase == Phase.PENDING and obs.reason == "Unschedulable" and "nvidia.com/gpu" in obs.message


def test_queued_by_kueue_is_queued_then_suspended_after_start() -> None:
    suspended = {"spec": {"suspend": True}, "status": {}}
    assert observe(suspended, [], queued=True).phase == Phase.QUEUED
    started = {"spec": {"suspend": True}, "status": {"startTime": "t0"}}
    assert observe(started, [], queued=True).phase == Phase.SUSPENDED


QUOTA = (
    "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, 1 more needed"
)
PREEMPTION = "Preempted to accommodate a workload (UID: u2, JobUID: j2) due to prioritization in the ClusterQueue"


def _workload(*conditions: tuple[str, str, str, str], evictions: int = 0) -> dict[str, object]:
    stats = {"evictions": [{"reason": "Preempted", "underlyingCause": "InClusterQueue", "count": evictions}]}
    return {
        "status": {
            "conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions],
            **({"schedulingStats": stats} if evictions else {}),
        }
    }


def test_a_queued_job_shows_kueues_own_reason() -> None:
    waiting = kueue_view(_workload(("QuotaReserved", "False", "Pending", QUOTA)))
    obs = observe({"spec": {"suspend": True}, "status": {}}, [], queued=True, kueue=waiting)
    assert (obs.phase, obs.reason, obs.message) == (Phase.QUEUED, "Queued", QUOTA)
    assert kueue_view(None) == NOT_SEEN and not NOT_SEEN.waiting


def test_a_preempted_job_is_preempted_while_its_pods_stop_then_queued() -> None:
    view = kueue_view(
        _workload(
            ("Evicted", "True", "Preempted", PREEMPTION), ("QuotaReserved", "False", "Pending", QUOTA), evictions=1
        )
    )
    assert view.preempted == PREEMPTION and view.preemptions == 1 and not view.admitted
    # Kueue suspended the Job; the Job controller has not cleared startTime yet, and the pod still saves.
    job = {"spec": {"suspend": True}, "status": {"startTime": "t0", "active": 1}}
    stopping = observe(job, [_pod("Running", running={})], queued=True, kueue=view)
    assert stopping.phase == Phase.PREEMPTED and PREEMPTION in stopping.message and "checkpoint" in stopping.message
    gone = observe({"spec": {"suspend": True}, "status": {}}, [], queued=True, kueue=view)
    assert gone.phase == Phase.QUEUED and gone.message == f"preempted ({PREEMPTION}); {QUOTA}"
    assert gone.reason == "Preempted", "the Event of Running -> Queued says why, if the sync missed the pods stop"
    cleared = kueue_view(
        _workload(("Evicted", "False", "Admitted", ""), ("Admitted", "True", "Admitted", ""), evictions=1)
    )
    assert not cleared.preempted and cleared.admitted and cleared.preemptions == 1


def test_condition_times_move_only_on_change() -> None:
    t1, t2, t3 = (dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC) for h in (1, 2, 3))
    running = observe(_job(active=1), [_pod("Running", running={})])
    first = conditions(None, running, 1, t1)
    again = conditions(first, running, 1, t2)
    assert first == again
    done = observe(_job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}]), [])
    after = {c.type: c for c in conditions(again, done, 1, t3)}
    assert after["Complete"].last_transition_time == t3 and after["Validated"].last_transition_time == t1


def _finished(phase: str, completed: str, ttl: str | None) -> tuple[Observed, FineTuneJob]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"].pop("ttlAfterFinished", None)
    if ttl:
        doc["spec"]["ttlAfterFinished"] = ttl
    body = {**doc, "status": {"phase": phase, "completionTime": completed}}
    return Observed.of(body), FineTuneJob.model_validate(doc)


def test_ttl_expiry_reads_both_rfc3339_forms() -> None:
    from finetune_operator.reconcile import expired

    for finished in ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00+00:00"):
        assert expired(*_finished("Succeeded", finished, "1h"))
    assert not expired(*_finished("Running", "2020-01-01T00:00:00Z", "1s"))
    assert not expired(*_finished("Succeeded", "2020-01-01T00:00:00Z", None))


def test_phase_gauge_resync_overrides_drift() -> None:
    from finetune_operator.metrics import OperatorMetrics

    metrics = OperatorMetrics()
    metrics.transition(None, "Running")
    metrics.transition("Running", "Failed")
    metrics.set_phases({"Succeeded": 3, "Running": 1})
    values = {
        s.labels["phase"]: s.value
        for f in metrics.registry.collect()
        for s in f.samples
        if s.name == "finetune_operator_finetunejobs"
    }
    assert values["Succeeded"] == 3 and values["Running"] == 1 and values["Failed"] == 0


def test_succeeded_pod_before_the_job_completes_is_still_running() -> None:
    """Seen on a real kubelet: the pod is Succeeded while the Job still counts it active for a moment."""
    obs = observe(_job(active=1, startTime="t0"), [_pod("Succeeded", terminated={"exitCode": 0})])
    assert obs.phase == Phase.RUNNING and obs.reason == "TrainerFinished"
    restarting = observe(_job(active=1, failed=1, startTime="t0"), [_pod("Failed", terminated={"exitCode": 13})])
    assert restarting.phase == Phase.INITIALIZING, "a failed pod about to be replaced is not finished"
