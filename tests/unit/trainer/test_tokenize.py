"""Prompt masking and chat templates, with a tokenizer built here from a word list (no download)."""

from __future__ import annotations

from typing import Any

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from finetune_api.v1alpha1.enums import CausalFormat
from finetune_trainer.data.records import Record
from finetune_trainer.data.tokenize import IGNORE, tokenize_causal, tokenize_classification
from finetune_trainer.errors import DataError

WORDS = "<|user|> <|assistant|> what is two plus two four hi hello there positive negative".split()  # noqa: SIM905
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def _tokenizer(chat: bool) -> Any:
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "</s>", "[SEP]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", sep_token="[SEP]"
    )
    tok.chat_template = TEMPLATE if chat else None
    return tok


def _words(tok: Any, ids: list[int]) -> list[str]:
    return [str(t) for t in tok.convert_ids_to_tokens(ids)]


def test_prompt_completion_learns_only_the_completion() -> None:
    tok = _tokenizer(chat=False)
    record = Record({"prompt": "what is two plus two", "completion": "four"})
    (example,) = tokenize_causal([record], tok, CausalFormat.PROMPT_COMPLETION, 64).examples
    ids, labels = example["input_ids"], example["labels"]
    assert isinstance(ids, list) and isinstance(labels, list)
    learned = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE]
    assert _words(tok, learned) == ["four", "</s>"], "loss on the completion and its end, never the prompt"


def test_prompt_completion_uses_the_chat_format_when_the_tokenizer_has_one() -> None:
    tok = _tokenizer(chat=True)
    record = Record({"prompt": "what is two plus two", "completion": "four"})
    (example,) = tokenize_causal([record], tok, CausalFormat.PROMPT_COMPLETION, 64).examples
    ids, labels = example["input_ids"], example["labels"]
    assert isinstance(ids, list) and isinstance(labels, list)
    assert _words(tok, ids)[:1] == ["<|user|>"] and "<|assistant|>" in _words(tok, ids)
    assert _words(tok, [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE]) == ["four", "</s>"]


def test_chat_learns_the_assistant_turns_only() -> None:
    tok = _tokenizer(chat=True)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello there"},
        {"role": "user", "content": "what is two plus two"},
        {"role": "assistant", "content": "four"},
    ]
    (example,) = tokenize_causal([Record({"messages": messages})], tok, CausalFormat.CHAT, 64).examples
    ids, labels = example["input_ids"], example["labels"]
    assert isinstance(ids, list) and isinstance(labels, list)
    learned = [w for w, lab in zip(_words(tok, ids), labels, strict=True) if lab != IGNORE]
    assert [w for w in learned if w != "</s>"] == ["hello", "there", "four"]
    assert not {"hi", "what", "<|user|>"} & set(learned), "no loss on the user's turns or the role markers"


def test_chat_needs_a_template() -> None:
    with pytest.raises(DataError, match="chat template"):
        tokenize_causal(
            [Record({"messages": [{"role": "user", "content": "hi"}]})], _tokenizer(False), CausalFormat.CHAT, 8
        )


def test_rows_whose_prompt_fills_max_length_are_skipped_and_truncation_counted() -> None:
    tok = _tokenizer(chat=False)
    long_prompt = Record({"prompt": "what is two plus two " * 4, "completion": "four"})
    short = Record({"prompt": "hi", "completion": "hello there four"})
    tokenized = tokenize_causal([long_prompt, short], tok, CausalFormat.PROMPT_COMPLETION, 4)
    assert len(tokenized) == 1 and tokenized.truncated == 2
    assert len(tokenized[0]["input_ids"]) == 4  # type: ignore[arg-type]


def test_classification_labels_map_to_ids_and_unknown_labels_name_the_row() -> None:
    tok = _tokenizer(chat=False)
    ids = {"negative": 0, "positive": 1}
    out = tokenize_classification([Record({"text": "hi"}, "positive")], tok, ids, 16, "train.csv")
    assert out[0]["labels"] == 1
    with pytest.raises(DataError, match=r"train\.csv: line 3: label 'meh' is not one of the labels"):
        tokenize_classification(
            [Record({"text": "hi"}, "negative", "line 2"), Record({"text": "hi"}, "meh", "line 3")],
            tok,
            ids,
            16,
            "train.csv",
        )
