"""spec.model: which pretrained model to start from, and what loading it may do."""

from __future__ import annotations

from pydantic import Field

from .base import NO_CREDENTIALS, NO_PARENT_SEGMENTS, STORAGE_URI, URI_MAX, SpecModel, cel


class ModelSource(SpecModel):
    """The pretrained model to fine-tune: a folder of safetensors weights, config and tokenizer."""

    uri: str = Field(
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description=(
            "Where the model folder is: an s3:// prefix (e.g. s3://models/all-minilm-l6-v2/), a local or "
            "PVC-mounted path, or a Hub id (org/name) where the cluster has internet access."
        ),
    )
    revision: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description=(
            "The revision to load: a Hub branch, tag or commit for Hub ids. Recorded in the output manifest "
            "for lineage (for s3:// models the object ETags are recorded too)."
        ),
    )
    tokenizer_uri: str | None = Field(
        default=None,
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description="Where the tokenizer is, when it is not in the model folder. Defaults to model.uri.",
    )
    trust_remote_code: bool = Field(
        default=False,
        description=(
            "Run Python code shipped with the model (custom architectures). Off by default: a model folder "
            "can execute arbitrary code in the trainer pod when this is true."
        ),
    )
    allow_pickle: bool = Field(
        default=False,
        description=(
            "Accept pickle-based weight files (pytorch_model.bin). Off by default: unpickling can execute "
            "code; only safetensors weights load unless this is true."
        ),
    )
