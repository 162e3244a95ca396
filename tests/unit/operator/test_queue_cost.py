"""What sharing the cluster cost a queued job (status.queue): time waiting for admission and preemptions."""

from __future__ import annotations

import datetime as dt

from finetune_api.v1alpha1.enums import Phase
from finetune_api.v1alpha1.status import FineTuneJobStatus, QueueStatus
from finetune_operator.status.kueue import NOT_SEEN, KueueView, queue_status

Q = "fine-tuning"
T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def _before(queue: QueueStatus | None, phase: Phase | None) -> FineTuneJobStatus:
    return FineTuneJobStatus(phase=phase, queue=queue)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_each_wait_is_counted_once_and_preemptions_come_from_kueue() -> None:
    queue, waited = queue_status(_before(None, None), Q, Phase.QUEUED, NOT_SEEN, _at(0))
    assert (queue.name, queue.waiting_since, queue.queued_seconds, waited) == ("fine-tuning", _at(0), 0.0, None)
    # Syncs while it waits change nothing (an unchanged status is not written).
    again, waited = queue_status(_before(queue, Phase.QUEUED), Q, Phase.QUEUED, NOT_SEEN, _at(30))
    assert again == queue and waited is None
    admitted, waited = queue_status(_before(again, Phase.QUEUED), Q, Phase.INITIALIZING, NOT_SEEN, _at(90))
    assert admitted.queued_seconds == 90.0 and waited == 90.0
    running, waited = queue_status(_before(admitted, Phase.INITIALIZING), Q, Phase.RUNNING, NOT_SEEN, _at(200))
    assert running == admitted and waited is None, "a wait is added once, when it ends"
    preempted = KueueView("", "Preempted to accommodate a workload", 1, False)
    stopping, _ = queue_status(_before(running, Phase.RUNNING), Q, Phase.PREEMPTED, preempted, _at(300))
    assert stopping.preemptions == 1 and stopping.waiting_since == _at(300)
    queued, _ = queue_status(_before(stopping, Phase.PREEMPTED), Q, Phase.QUEUED, preempted, _at(310))
    assert queued.waiting_since == _at(300), "Preempted then Queued is one wait"
    back, waited = queue_status(_before(queued, Phase.QUEUED), Q, Phase.RUNNING, NOT_SEEN, _at(420))
    assert back.queued_seconds == 210.0 and waited == 120.0 and back.preemptions == 1


def test_the_operator_reads_kueues_workloads_where_kueue_serves_them() -> None:
    from finetune_operator.kube import collection
    from finetune_operator.status.kueue import WORKLOAD_API

    assert collection(WORKLOAD_API, "Workload", "team") == "/apis/kueue.x-k8s.io/v1beta2/namespaces/team/workloads"
