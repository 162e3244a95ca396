"""Packed batches keep examples apart: each example's logits equal those it gets alone."""

from __future__ import annotations

import torch

from finetune_trainer.data.collate import IGNORE, PackFlat, PadToLongest, dense_attention, prepare_for_packing


def _tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config).eval()


def test_packed_logits_match_unpacked() -> None:
    model = _tiny_llama()
    assert prepare_for_packing(model)
    a = {"input_ids": [5, 6, 7, 8, 9], "labels": [5, 6, 7, 8, 9]}
    b = {"input_ids": [10, 11, 12], "labels": [10, 11, 12]}
    packed = PackFlat()([a, b])
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    assert packed["labels"][0, 0] == IGNORE and packed["labels"][0, 5] == IGNORE
    with torch.no_grad():
        together = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits[0]
        alone_a = model(input_ids=torch.tensor([a["input_ids"]])).logits[0]
        alone_b = model(input_ids=torch.tensor([b["input_ids"]])).logits[0]
    torch.testing.assert_close(together[:5], alone_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(together[5:], alone_b, rtol=1e-4, atol=1e-5)


def test_padding_is_to_the_longest_row_only() -> None:
    batch = PadToLongest(pad_token_id=0)([{"input_ids": [1, 2, 3], "labels": 1}, {"input_ids": [4], "labels": 0}])
    assert batch["input_ids"].shape == (2, 3)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    multiple = PadToLongest(pad_token_id=0, pad_to_multiple_of=8)([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])
    assert multiple["input_ids"].shape == (1, 8) and multiple["labels"][0, 3:].eq(IGNORE).all()


def test_packing_counts_as_padding_free_only_under_flash_attention() -> None:
    model = _tiny_llama()
    model.config._attn_implementation = "sdpa"
    assert dense_attention(model) == "sdpa"
    model.config._attn_implementation = "eager"
    assert dense_attention(model) == "eager"
    model.config._attn_implementation = "flash_attention_2"
    assert dense_attention(model) is None


def test_packing_asked_with_dense_attention_trains_padded() -> None:
    from types import SimpleNamespace
    from typing import Any

    from finetune_trainer.training.loop import choose_collators

    model = _tiny_llama()
    model.config._attn_implementation = "sdpa"
    spec: Any = SimpleNamespace(training=SimpleNamespace(packing=True, group_by_length=True))
    collators = choose_collators(spec, SimpleNamespace(pad_token_id=0), model=model, on_gpu=False)
    assert not collators.packed and isinstance(collators.train, PadToLongest)
    model.config._attn_implementation = "flash_attention_2"
    collators = choose_collators(spec, SimpleNamespace(pad_token_id=0), model=model, on_gpu=False)
    assert collators.packed and isinstance(collators.train, PackFlat)
