"""Which FineTuneJob watch events call for a reconcile: level-triggered, with no bookkeeping on the object."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_operator.reconcile import needs_reconcile


def _ftj(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j", "namespace": "ns", "generation": generation}, "status": status}


SEEN = {"jobName": "j", "observedGeneration": 1, "phase": "Running"}


@pytest.mark.parametrize(
    ("event", "body", "expected"),
    [
        ("ADDED", _ftj(), True),  # new: no status yet
        ("MODIFIED", _ftj(**SEEN), False),  # our own status write, or the trainer's progress
        ("MODIFIED", _ftj(generation=2, **SEEN), True),  # the spec changed (e.g. suspend)
        (None, _ftj(**SEEN), True),  # the operator (re)started: converge and resync
        (None, _ftj(jobName="j", observedGeneration=1, phase="Succeeded"), False),
        ("MODIFIED", _ftj(generation=2, jobName="j", observedGeneration=1, phase="Failed"), False),
        ("DELETED", _ftj(), False),
        ("MODIFIED", {**_ftj(generation=2), "metadata": {"generation": 2, "deletionTimestamp": "x"}}, False),
        ("MODIFIED", _ftj(observedGeneration=1, phase="Pending"), True),  # a status that names no Job yet
    ],
)
def test_needs_reconcile(event: str | None, body: dict[str, Any], expected: bool) -> None:
    assert needs_reconcile(event, body) is expected
