"""How the published output is served, as the manifest records it and the model card shows it: vLLM's rules
checked on the adapter_config.json PEFT wrote, a ready-to-run `vllm serve` line and a KServe
LLMInferenceService for each folder a server can take."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from finetune_api.resolved import ResolvedSpec
from finetune_api.serving import (
    ADAPTER_FOLDER,
    VLLM_DEFAULT_MAX_LORA_RANK,
    AdapterFacts,
    Form,
    Servable,
    serving_plan,
)
from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.enums import MethodType

log = logging.getLogger(__name__)


def plan_output(out: Path, spec: ResolvedSpec) -> list[Servable]:
    """The serving plan of the folder about to be published; a rule the adapter breaks is logged as a warning."""
    config = out / ADAPTER_FOLDER / "adapter_config.json"
    lora = spec.method.type in (MethodType.LORA, MethodType.QLORA) and config.is_file()
    adapter = AdapterFacts.from_config(json.loads(config.read_text())) if lora else None
    plan = serving_plan(spec.method.type, spec.output.save, spec.task.type, adapter)
    for servable in plan:
        if lora and servable.folder == ADAPTER_FOLDER and servable.reason:
            log.warning("vLLM and %s/: %s", servable.folder, servable.reason)
    return plan


def _local(uri: str, name: str) -> tuple[str, str]:
    """(shell line that brings `uri` to a local folder, that folder): vLLM reads local folders."""
    if parse_uri(uri).kind == "s3":
        return f"aws s3 sync {uri.rstrip('/')}/ ./{name}", f"./{name}"
    return "", uri


def serving_section(plan: list[Servable], job: str, output_uri: str, base_uri: str) -> str:
    """The model card's "Serving" section."""
    lines = ["## Serving", ""]
    for servable in plan:
        uri = f"{output_uri.rstrip('/')}/{servable.folder}/"
        if servable.form == Form.NOT_SERVABLE:
            lines.append(f"- `{servable.folder}/`: not servable by vLLM: {servable.reason}.")
            continue
        what = "LoRA adapter" if servable.form == Form.VLLM_LORA else "whole model"
        note = f" Note: {servable.reason}." if servable.reason else ""
        lines += [f"- `{servable.folder}/`: vLLM serves it as a {what}.{note}", "", "```sh"]
        lines += _vllm_lines(servable, job, uri, base_uri)
        lines += ["```", ""]
        if parse_uri(uri).kind == "s3":
            lines += ["KServe:", "", "```yaml", _llm_inference_service(servable, job, uri, base_uri).strip(), "```"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n\n"


def _vllm_lines(servable: Servable, job: str, uri: str, base_uri: str) -> list[str]:
    if servable.form == Form.VLLM_MODEL:
        fetch, folder = _local(uri, f"{job}-{servable.folder}")  # apart from the adapter's folder
        return [line for line in (fetch, f"vllm serve {folder} --served-model-name {job}") if line]
    fetch_base, base = _local(base_uri, "base")
    fetch_adapter, adapter = _local(uri, job)
    serve = f"vllm serve {base} --enable-lora --lora-modules {job}={adapter} --max-lora-rank {servable.max_lora_rank}"
    return [line for line in (fetch_base, fetch_adapter, serve) if line]


def _llm_inference_service(servable: Servable, job: str, uri: str, base_uri: str) -> str:
    if servable.form == Form.VLLM_MODEL:
        model: dict[str, object] = {"uri": uri, "name": job}
    else:
        model = {"uri": base_uri, "lora": {"adapters": [{"name": job, "uri": uri}]}}
    rank = servable.max_lora_rank or 0
    default = VLLM_DEFAULT_MAX_LORA_RANK
    hint = f"# the vLLM container needs --max-lora-rank {rank} (default {default})\n" if rank > default else ""
    doc = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "LLMInferenceService",
        "metadata": {"name": job},
        "spec": {"model": model},
    }
    return hint + yaml.safe_dump(doc, sort_keys=False)
