"""Fetch the model folder and load model and tokenizer: safetensors only and no remote code unless allowed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from finetune_api.resolve import ModelFacts
from finetune_api.resolved import QloraMethod, ResolvedSpec
from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.enums import TaskType
from finetune_api.v1alpha1.job import FineTuneJobSpec

from ..errors import ConfigError
from ..storage import ObjectInfo, Store, open_store
from .model_files import check_model_folder, require_tokenizer

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# A separate tokenizer's files sit beside the model's in the lineage ETags (baseModel.etags), under this
# prefix, so the two folders' keys stay apart.
TOKENIZER_ETAG_PREFIX = "tokenizerUri:"


def fetch_model(spec: FineTuneJobSpec, dest: Path) -> tuple[str, dict[str, str]]:
    """Download the model folder; returns the local dir (or Hub id) and the ETags for lineage."""
    uri = parse_uri(spec.model.uri)
    if uri.kind == "hub":
        return spec.model.uri, {}
    store = open_store(spec.model.uri, spec.s3)
    objects = store.list_objects()
    if not objects:
        raise ConfigError(
            f"spec.model.uri: {spec.model.uri} holds no files; "
            "upload the model folder (config.json, *.safetensors, tokenizer)"
        )
    names = [o.key for o in objects]
    only_pickle = not any(n.endswith(".safetensors") for n in names) and any(n.endswith(PICKLE_SUFFIXES) for n in names)
    if only_pickle and not spec.model.allow_pickle:
        raise ConfigError(
            "spec.model.uri has only pickle weights (*.bin); convert them to safetensors, "
            "or set spec.model.allowPickle: true if you trust the file"
        )
    if _separate_tokenizer(spec) is None:
        require_tokenizer(names, _where(spec))
    wanted = _download_loadable(store, objects, dest, spec)
    check_model_folder(dest, _where(spec), spec.model.trust_remote_code)
    return str(dest), {o.key: o.etag for o in wanted}


def _download_loadable(store: Store, objects: list[ObjectInfo], dest: Path, spec: FineTuneJobSpec) -> list[ObjectInfo]:
    """The objects from_pretrained may load (no pickle files unless the spec allows them), downloaded
    to `dest` unless a resumed run already has them all there."""
    wanted = [o for o in objects if spec.model.allow_pickle or not o.key.endswith(PICKLE_SUFFIXES)]
    if all((dest / o.key).is_file() and (dest / o.key).stat().st_size == o.size for o in wanted):
        log.info("already in %s", dest)
    else:
        store.download_all(dest, keys=[o.key for o in wanted])
    return wanted


def _separate_tokenizer(spec: FineTuneJobSpec) -> str | None:
    """spec.model.tokenizerUri where it names another place than the model folder (resolve fills it in)."""
    uri = spec.model.tokenizer_uri
    return uri if uri and uri.rstrip("/") != spec.model.uri.rstrip("/") else None


def fetch_tokenizer(spec: FineTuneJobSpec, dest: Path) -> tuple[str | None, dict[str, str]]:
    """Download a tokenizer kept apart from the model (spec.model.tokenizerUri): its local dir (or Hub
    id) and ETags (keys under TOKENIZER_ETAG_PREFIX), or None when the tokenizer is in the model folder."""
    uri = _separate_tokenizer(spec)
    if uri is None:
        return None, {}
    if parse_uri(uri).kind == "hub":
        return uri, {}
    store = open_store(uri, spec.s3)
    objects = store.list_objects()
    require_tokenizer([o.key for o in objects], f"spec.model.tokenizerUri ({uri})")
    wanted = _download_loadable(store, objects, dest, spec)  # a tokenizer folder needs no weights
    return str(dest), {f"{TOKENIZER_ETAG_PREFIX}{o.key}": o.etag for o in wanted}


def _where(spec: FineTuneJobSpec) -> str:
    return f"spec.model.uri ({spec.model.uri})"


def _load_errors() -> tuple[type[Exception], ...]:
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, SafetensorError)


def _unloadable(source: str, what: str, exc: Exception, field: str = "spec.model.uri") -> ConfigError:
    """What from_pretrained raised, as the user's mistake it is: the folder, or a Hub without network."""
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    if parse_uri(source).kind == "hub":
        # What the field names is what cannot be fetched: the model's repository, even when its tokenizer
        # was the first file asked for.
        named = "model" if field == "spec.model.uri" else what
        return ConfigError(
            f"{field}: the Hub {named} {source!r} cannot be fetched ({first}); with no network to the Hub, "
            f"upload the folder to s3:// (or a mounted path) and point {field} at it"
        )
    return ConfigError(f"{field}: the {what} in {source} cannot be loaded ({first}); re-upload the folder")


def model_facts(source: str, spec: FineTuneJobSpec, tokenizer: Any) -> ModelFacts:
    """What resolving the spec needs to know about this model: its architecture and length limit."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        source, revision=spec.model.revision, trust_remote_code=spec.model.trust_remote_code
    )
    limit = getattr(tokenizer, "model_max_length", None)
    return ModelFacts(model_type=getattr(config, "model_type", None), max_length=int(limit) if limit else None)


def load_tokenizer(source: str, spec: FineTuneJobSpec) -> Any:
    """The tokenizer from `source`: the model folder, or the folder fetch_tokenizer returned."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, revision=spec.model.revision, trust_remote_code=spec.model.trust_remote_code
        )
    except _load_errors() as exc:
        field = "spec.model.tokenizerUri" if _separate_tokenizer(spec) else "spec.model.uri"
        raise _unloadable(source, "tokenizer", exc, field) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(source: str, spec: ResolvedSpec, labels: list[str] | None, dtype: torch.dtype, tokenizer: Any) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {
        "revision": spec.model.revision,
        "trust_remote_code": spec.model.trust_remote_code,
        "use_safetensors": not spec.model.allow_pickle,
        "dtype": dtype,
    }
    if isinstance(spec.method, QloraMethod):
        from ..methods.lora import quantization_config

        kwargs["quantization_config"] = quantization_config(spec.method.quantization)
    try:
        if spec.task.type == TaskType.SEQUENCE_CLASSIFICATION:
            if labels is None:
                raise ConfigError("sequence-classification needs the label set")
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
                **kwargs,
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except _load_errors() as exc:
        raise _unloadable(source, "model", exc) from exc
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model
