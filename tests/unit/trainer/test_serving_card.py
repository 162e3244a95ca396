"""The model card's Serving section: a ready-to-run vllm serve line and a KServe LLMInferenceService for what vLLM
serves, the reason for what it does not (issue 24)."""

from __future__ import annotations

import yaml

from finetune_api.serving import AdapterFacts, serving_plan
from finetune_api.v1alpha1.enums import MethodType, SaveMode, TaskType
from finetune_trainer.artifacts.serving import serving_section

OUT, BASE = "s3://models/out/sft/", "s3://models/smollm2-135m/"


def _kserve(section: str) -> dict[str, object]:
    body = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    doc: dict[str, object] = yaml.safe_load(body)
    return doc


def test_a_lora_adapter_gets_the_vllm_line_and_an_llm_inference_service() -> None:
    plan = serving_plan(MethodType.LORA, SaveMode.ADAPTER, TaskType.CAUSAL_LM, AdapterFacts(r=24))
    section = serving_section(plan, "sft", OUT, BASE)
    assert "aws s3 sync s3://models/smollm2-135m/ ./base" in section
    assert "aws s3 sync s3://models/out/sft/adapter/ ./sft" in section
    assert "vllm serve ./base --enable-lora --lora-modules sft=./sft --max-lora-rank 32" in section
    assert "pad every adapter slot to 32" in section, "the cost of rank 24 is on the card"
    assert "--max-lora-rank 32 (default 16)" in section
    assert _kserve(section) == {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "LLMInferenceService",
        "metadata": {"name": "sft"},
        "spec": {"model": {"uri": BASE, "lora": {"adapters": [{"name": "sft", "uri": OUT + "adapter/"}]}}},
    }


def test_a_merged_model_is_served_whole_and_an_ia3_adapter_says_why_not() -> None:
    section = serving_section(serving_plan(MethodType.IA3, SaveMode.BOTH, TaskType.CAUSAL_LM, None), "j", OUT, BASE)
    assert "- `adapter/`: not servable by vLLM: vLLM loads LoRA adapters only" in section
    assert "vllm serve ./j-model --served-model-name j" in section
    assert _kserve(section)["spec"] == {"model": {"uri": OUT + "model/", "name": "j"}}


def test_a_local_output_is_served_from_its_folder_without_kserve() -> None:
    plan = serving_plan(MethodType.FULL, SaveMode.ADAPTER, TaskType.CAUSAL_LM, None)
    section = serving_section(plan, "demo", "/tmp/out/demo/", "/models/smollm2/")
    assert "vllm serve /tmp/out/demo/model/ --served-model-name demo" in section
    assert "aws s3" not in section and "LLMInferenceService" not in section
