"""Events about a FineTuneJob: what kubectl describe shows, posted in order, never failing a reconcile."""

from __future__ import annotations

import datetime as dt
from typing import Any

from finetune_operator.events import EventPoster, render_event

FTJ = {
    "apiVersion": "finetune.dev/v1alpha1",
    "kind": "FineTuneJob",
    "metadata": {"name": "tweets", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"},
}


def test_an_event_names_its_object_and_is_cut_to_size() -> None:
    event = render_event(FTJ, "Warning", "InvalidSpec", "x" * 5000, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert event["metadata"] == {"generateName": "tweets.", "namespace": "ml"}
    ref = event["involvedObject"]
    assert (ref["kind"], ref["name"], ref["namespace"], ref["uid"]) == ("FineTuneJob", "tweets", "ml", "u-1")
    assert event["type"] == "Warning" and event["reason"] == "InvalidSpec" and len(event["message"]) == 1024
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-01-02T03:04:05Z"


def test_events_are_posted_in_order_and_a_failed_post_does_not_stop_the_rest() -> None:
    posted: list[str] = []

    def post(event: dict[str, Any]) -> None:
        if event["reason"] == "Broken":
            raise ConnectionError("the API server is away")
        posted.append(event["reason"])

    poster = EventPoster(post)
    for reason in ("JobCreated", "Broken", "TrainerRunning", "TrainerSucceeded"):
        poster.record(FTJ, "Normal", reason, "m")
    assert poster.flush(5)
    assert posted == ["JobCreated", "TrainerRunning", "TrainerSucceeded"]
