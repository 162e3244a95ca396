"""How a tuned output can be served: vLLM's rules for LoRA adapters, and what each method's output is to a server.

One table of facts, read by three callers: `finetune validate` and the operator's checks (from the spec, before
training), and the trainer at publish (from the adapter_config.json PEFT actually wrote). The facts are vLLM's:
- it loads a LoRA folder (adapter_config.json + adapter_model.safetensors) and refuses a non-empty
  modules_to_save (on the first request, not at start-up), use_dora, and a bias other than "none";
- --max-lora-rank must be one of VLLM_MAX_LORA_RANKS (default 16), and every adapter slot is sized at it;
- it serves neither IA3, prompt tuning nor prefix tuning adapters. LoRA and IA3 merge into the base weights
  (a whole model vLLM serves); learned virtual tokens do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .v1alpha1 import defaults
from .v1alpha1.enums import MethodType, SaveMode, TaskType

VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16
ADAPTER_FOLDER, MODEL_FOLDER = "adapter", "model"  # under the output prefix (trainer's results.py writes them)


class Form(StrEnum):
    VLLM_LORA = "vllm-lora"  # a LoRA adapter vLLM loads beside the base model (--enable-lora)
    VLLM_MODEL = "vllm-model"  # whole weights (trained in full, or an adapter merged in)
    NOT_SERVABLE = "not-servable-by-vllm"


@dataclass(frozen=True)
class AdapterFacts:
    """The adapter_config.json fields vLLM's rules read."""

    r: int
    modules_to_save: tuple[str, ...] = ()
    use_dora: bool = False
    bias: str = "none"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AdapterFacts:
        return cls(
            r=int(config.get("r") or 0),
            modules_to_save=tuple(config.get("modules_to_save") or ()),
            use_dora=bool(config.get("use_dora")),
            bias=str(config.get("bias") or "none"),
        )


@dataclass(frozen=True)
class BrokenRule:
    """One vLLM rule an adapter breaks: what, and the fix in this product's spec."""

    rule: str
    fix: str
    blocks: bool = True  # False: vLLM loads it all the same, at a cost (a rank padded up to --max-lora-rank)

    def render(self) -> str:
        return f"{self.rule} (fix: {self.fix})"


def max_lora_rank(r: int) -> int | None:
    """The smallest --max-lora-rank that holds rank r; None above vLLM's largest."""
    return next((allowed for allowed in VLLM_MAX_LORA_RANKS if allowed >= r), None)


def vllm_lora_rules(adapter: AdapterFacts) -> list[BrokenRule]:
    broken = []
    if adapter.modules_to_save:
        broken.append(
            BrokenRule(
                f"modules_to_save {list(adapter.modules_to_save)} is not empty: vLLM refuses it on the first request",
                "for sequence-classification the new head is saved in full: serve the merged model "
                "(spec.output.save: both), or train causal-lm",
            )
        )
    if adapter.use_dora:
        broken.append(BrokenRule("use_dora is set: vLLM does not load DoRA adapters", "train plain LoRA"))
    if adapter.bias != "none":
        broken.append(BrokenRule(f"bias is {adapter.bias!r}: vLLM loads bias 'none' only", "train without bias"))
    if adapter.r not in VLLM_MAX_LORA_RANKS:
        fits = max_lora_rank(adapter.r)
        below = max((a for a in VLLM_MAX_LORA_RANKS if a < adapter.r), default=None)
        choices = " or ".join(str(a) for a in (below, fits) if a is not None)
        broken.append(
            BrokenRule(
                f"rank {adapter.r} is not an allowed --max-lora-rank {list(VLLM_MAX_LORA_RANKS)}"
                + (f": vLLM would pad every adapter slot to {fits}" if fits else ": vLLM cannot load it"),
                f"set spec.method.r to {choices}",
                blocks=fits is None,
            )
        )
    return broken


@dataclass(frozen=True)
class Servable:
    """One folder of the output and how a server takes it."""

    folder: str
    form: Form
    reason: str = ""  # why not, for NOT_SERVABLE; what it costs, for a padded VLLM_LORA
    max_lora_rank: int | None = None  # for VLLM_LORA: the --max-lora-rank it needs

    def record(self) -> dict[str, Any]:
        """For manifest.json."""
        out: dict[str, Any] = {"path": f"{self.folder}/", "form": str(self.form)}
        if self.reason:
            out["reason"] = self.reason
        if self.max_lora_rank is not None:
            out["maxLoraRank"] = self.max_lora_rank
        return out


def adapter_facts_of_spec(r: int | None, task: TaskType) -> AdapterFacts:
    """What PEFT will write for a LoRA spec: a classification head rides along in modules_to_save."""
    head = ("classifier", "score") if task == TaskType.SEQUENCE_CLASSIFICATION else ()
    return AdapterFacts(r=r or defaults.LORA_R, modules_to_save=head)


def serving_plan(method: MethodType, save: SaveMode, task: TaskType, adapter: AdapterFacts | None) -> list[Servable]:
    """Every folder the output holds and how vLLM serves it. `adapter`: the LoRA adapter's facts (from the spec
    before training, from adapter_config.json at publish)."""
    if not method.is_peft:
        return [_whole(task, MODEL_FOLDER)]
    out = []
    if save in (SaveMode.ADAPTER, SaveMode.BOTH):
        out.append(_adapter(method, task, adapter))
    if save in (SaveMode.MERGED, SaveMode.BOTH):
        out.append(_whole(task, MODEL_FOLDER))
    return out


def _whole(task: TaskType, folder: str) -> Servable:
    if task != TaskType.CAUSAL_LM:
        return Servable(folder, Form.NOT_SERVABLE, _CLASSIFIER)
    return Servable(folder, Form.VLLM_MODEL)


_CLASSIFIER = "a sequence classifier: vLLM generates text; load it with transformers AutoModelForSequenceClassification"


def _adapter(method: MethodType, task: TaskType, adapter: AdapterFacts | None) -> Servable:
    if method in (MethodType.LORA, MethodType.QLORA) and adapter is not None:
        if task != TaskType.CAUSAL_LM:
            return Servable(ADAPTER_FOLDER, Form.NOT_SERVABLE, _CLASSIFIER + " (the adapter with PEFT's PeftModel)")
        broken = vllm_lora_rules(adapter)
        if any(b.blocks for b in broken):
            return Servable(ADAPTER_FOLDER, Form.NOT_SERVABLE, "; ".join(b.render() for b in broken if b.blocks))
        note = "; ".join(b.render() for b in broken)
        return Servable(ADAPTER_FOLDER, Form.VLLM_LORA, note, max_lora_rank(adapter.r))
    if method == MethodType.IA3:
        why = (
            "vLLM loads LoRA adapters only, not IA3 scaling vectors (fix: spec.output.save: both adds the merged model)"
        )
    else:
        why = (
            f"vLLM does not serve {method} adapters, and learned virtual tokens do not merge into the weights "
            "(fix: use lora)"
        )
    return Servable(ADAPTER_FOLDER, Form.NOT_SERVABLE, why)
