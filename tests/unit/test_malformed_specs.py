"""Every malformed spec of the corpus is rejected by `finetune validate`, naming the offending field."""

from __future__ import annotations

import pytest

from finetune_api.validation import validate_document
from tests.corpus.malformed import CASES, Case


def test_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.layer for c in CASES} == {"schema", "cel", "check"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_is_rejected_naming_the_field(case: Case) -> None:
    result = validate_document(case.document(), case.id)
    assert not result.ok, f"{case.id} was accepted"
    paths = [p.path for p in result.errors]
    assert any(p == case.field or p.startswith(case.field + ".") or p.startswith(case.field + "[") for p in paths), (
        f"{case.id}: no error names {case.field}; got {[p.render() for p in result.errors]}"
    )
    named = [p for p in result.errors if p.path.startswith(case.field)]
    # The layer that must catch it does: the server-side layers never leave it to the deeper checks.
    if case.layer == "check":
        assert any(p.source == "check" for p in named)
    else:
        assert any(p.source in ("schema", "cel") for p in named)
    for problem in result.errors:
        assert problem.fix or problem.source == "cel", f"{problem.render()} gives no fix"


def test_every_problem_is_reported_at_once() -> None:
    doc = CASES[0].document()
    doc["spec"]["method"]["r"] = 0
    doc["spec"]["training"]["learningRate"] = -1
    doc["spec"]["bogus"] = True
    result = validate_document(doc)
    paths = {p.path for p in result.errors}
    assert {"spec.training.epochs", "spec.method.r", "spec.training.learningRate", "spec.bogus"} <= paths


def test_hostile_values_are_escaped_in_messages() -> None:
    doc = next(c for c in CASES if c.id == "column-shell-newline").document()
    rendered = " ".join(p.render() for p in validate_document(doc).errors)
    assert "\n" not in rendered
