"""spec.output: where the tuned model, its manifest and the checkpoints go."""

from __future__ import annotations

from pydantic import Field

from . import defaults
from .base import NO_CREDENTIALS, NO_PARENT_SEGMENTS, STORAGE_URI, URI_MAX, SpecModel, cel
from .enums import SaveMode, ServingTarget


class OutputSpec(SpecModel):
    """The output prefix. manifest.json is written there last: a prefix without it is incomplete."""

    uri: str = Field(
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description="Output prefix: s3://bucket/prefix/ or a local/PVC path.",
    )
    save: SaveMode = Field(
        default=SaveMode.ADAPTER,
        description=(
            "For adapter methods: adapter (PEFT folder, loads with PeftModel.from_pretrained), merged "
            "(adapter folded into full weights; lora, qlora and ia3 only) or both. Methods that train the "
            "model itself always write the full model."
        ),
    )
    serving: ServingTarget | None = Field(
        default=None,
        description=(
            "The server the output must load in. vllm: a spec whose output vLLM cannot serve (a LoRA rank that is "
            "not an allowed --max-lora-rank, a classification task, IA3 without the merged model, prompt or prefix "
            "tuning) is refused before training. Unset: the same rules give warnings, and the manifest and model "
            "card say how each folder of the output is served."
        ),
    )
    checkpoint_every: int = Field(
        default=100, ge=1, le=10_000_000, description="Save a resumable checkpoint every N optimizer steps."
    )
    keep_checkpoints: int = Field(
        default=2, ge=1, le=100, description="How many of the newest checkpoints to keep in the store."
    )
    checkpoint_uri: str | None = Field(
        default=None,
        max_length=URI_MAX,
        pattern=STORAGE_URI,
        json_schema_extra=cel(NO_PARENT_SEGMENTS, NO_CREDENTIALS),
        description=(
            f"Where checkpoints go. Default <uri>/{defaults.CHECKPOINTS}/. A restarted job resumes from the newest complete one "
            "of the same run; a prefix holding another run's checkpoints (another job, or a changed spec or data) "
            "is refused, never resumed."
        ),
    )
