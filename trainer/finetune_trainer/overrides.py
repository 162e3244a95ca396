"""The command line's overrides of a spec (--output, --s3-endpoint, and the demo's sizes), for jobs and experiments."""

from __future__ import annotations

from finetune_api.v1alpha1.job import FineTuneJob, FineTuneJobSpec
from finetune_api.v1alpha1.storage import S3Spec

from .job_file import revalidate

# The spec field each command-line override sets: a problem with the changed field names the flag.
OVERRIDE_FLAGS = {"spec.output.uri": "--output", "spec.s3.endpoint": "--s3-endpoint"}


def spec_with_overrides(
    spec: FineTuneJobSpec, output: str | None, s3_endpoint: str | None, max_samples: int | None = None
) -> FineTuneJobSpec:
    if output:
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"uri": output})})
    if s3_endpoint:
        s3 = (spec.s3 or S3Spec()).model_copy(update={"endpoint": s3_endpoint})
        spec = spec.model_copy(update={"s3": s3})
    if max_samples:
        spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"max_samples": max_samples})})
    return spec


def with_overrides(job: FineTuneJob, output: str | None, s3_endpoint: str | None) -> FineTuneJob:
    """The job with `--output` and `--s3-endpoint` applied, validated again as a whole (ConfigError)."""
    if not output and not s3_endpoint:
        return job
    changed = job.model_copy(update={"spec": spec_with_overrides(job.spec, output, s3_endpoint)})
    return revalidate(changed, OVERRIDE_FLAGS)
