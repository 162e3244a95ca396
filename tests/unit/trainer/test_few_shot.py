"""Few-shot demonstrations and in-context label scoring: pure logic, a character tokenizer, no model download."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from finetune_api.v1alpha1.enums import CausalFormat
from finetune_trainer.data.records import Record
from finetune_trainer.data.tokenize import IGNORE
from finetune_trainer.errors import DataError
from finetune_trainer.evaluation.few_shot import causal_few_shot_set, fit_oldest_first, select_demonstrations
from finetune_trainer.evaluation.label_scoring import (
    best_label,
    classification_prompt,
    continuation_log_likelihood,
    in_context_classification,
)


class CharTokenizer:
    """One token per character (its code point); no chat template, so the plain-text prompt path is used."""

    eos_token = ""
    pad_token_id = 0
    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def _pc(i: int) -> Record:
    return Record({"prompt": f"question {i}", "completion": f"answer {i}"}, row=f"line {i}")


def test_demonstrations_never_use_an_eval_row_even_a_duplicate_in_training() -> None:
    evaluation = [_pc(i) for i in range(5)]
    train = [_pc(i) for i in range(3, 40)]  # rows 3 and 4 are also eval rows (allowOverlap)
    demos = select_demonstrations(train, evaluation, shots=4, seed=7)
    eval_keys = {r.key for r in evaluation}
    assert len(demos) == len(evaluation)
    assert all(len(d) == 4 and not {r.key for r in d} & eval_keys for d in demos)


def test_demonstrations_are_seeded() -> None:
    train, evaluation = [_pc(i) for i in range(10, 60)], [_pc(i) for i in range(5)]
    first = select_demonstrations(train, evaluation, 3, seed=1)
    assert first == select_demonstrations(train, evaluation, 3, seed=1)
    assert first != select_demonstrations(train, evaluation, 3, seed=2)


def test_no_usable_training_row_is_a_data_error() -> None:
    rows = [_pc(1), _pc(2)]
    with pytest.raises(DataError, match="fewShot"):
        select_demonstrations(rows, rows, 2, seed=0)


def test_fit_drops_the_oldest_first() -> None:
    demos = [_pc(i) for i in range(5)]
    kept = fit_oldest_first(demos, lambda d: 10 * len(d), limit=25)
    assert kept == demos[3:]
    assert fit_oldest_first(demos, lambda d: 1000, limit=25) == []


def test_few_shot_rows_fit_max_length_and_score_only_the_eval_completion() -> None:
    tok = CharTokenizer()
    evaluation = [_pc(i) for i in range(4)]
    demos = select_demonstrations([_pc(i) for i in range(100, 130)], evaluation, shots=5, seed=3)
    max_length = 80  # room for about two 25-character demonstrations, not five
    rows, mean_used = causal_few_shot_set(evaluation, demos, tok, CausalFormat.PROMPT_COMPLETION, max_length)
    assert len(rows) == len(evaluation) and 0 < mean_used < 5
    for example, record, own in zip(rows.examples, evaluation, demos, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        assert isinstance(ids, list) and isinstance(labels, list) and len(ids) <= max_length
        scored = "".join(chr(t) for t in labels if t != IGNORE)
        assert scored == record.fields["completion"]  # never a demonstration's completion
        text = "".join(chr(t) for t in ids)
        assert text.endswith(f"{record.fields['prompt']}\n{record.fields['completion']}")
        shown = [d for d in own if d.fields["prompt"] + "\n" in text]
        assert shown == own[len(own) - len(shown) :]  # the newest kept, the oldest dropped


def test_continuation_log_likelihood_reads_the_logits_one_step_back() -> None:
    logits = torch.zeros(4, 6)
    logits[1, 5] = 3.0  # position 1 predicts token 5 at position 2
    logits[2, 2] = 3.0
    ids = [0, 1, 5, 2]
    strong = continuation_log_likelihood(logits, ids, 2, 4)
    weak = continuation_log_likelihood(logits, [0, 1, 4, 4], 2, 4)
    expected = 2 * float(torch.log_softmax(logits[1], -1)[5])
    assert strong == pytest.approx(expected) and weak < strong


def test_best_label_takes_the_likeliest_and_breaks_ties_by_order() -> None:
    assert best_label([-3.0, -1.0, -2.0]) == 1
    assert best_label([-1.0, -1.0]) == 0


class FavoursToken(torch.nn.Module):
    """A 'language model' that always predicts one token: the label spelled with it must win."""

    def __init__(self, token: int) -> None:
        super().__init__()
        self.token = token
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        logits = torch.zeros(*input_ids.shape, 256)
        logits[..., self.token] = 5.0
        return SimpleNamespace(logits=logits)


def test_in_context_classification_scores_every_label_after_the_demonstrations() -> None:
    labels = ["neg", "pos"]
    evaluation = [Record({"text": f"tweet {i}"}, "pos" if i % 2 else "neg") for i in range(6)]
    train = [Record({"text": f"other {i}"}, labels[i % 2]) for i in range(20)]
    demos = select_demonstrations(train, evaluation, 2, seed=0)
    prompts = list(zip(evaluation, demos, strict=True))
    result, used = in_context_classification(FavoursToken(ord("p")), CharTokenizer(), prompts, labels, 200)
    assert result["eval_accuracy"] == pytest.approx(0.5)  # always "pos": right on the three pos rows
    assert result["eval_macro_f1"] == pytest.approx((0 + 2 * 3 / (2 * 3 + 3)) / 2)
    assert used == 2
    prompt = classification_prompt(demos[0], evaluation[0])
    assert prompt.endswith("Text: tweet 0\nLabel:") and prompt.count("Label:") == 3
