"""The contract between the operator, which renders the trainer pod, and the trainer that runs in it.

Both sides import these names; neither types them. What crosses the pod boundary:
- the FineTuneJob (resolved spec) mounted from a ConfigMap at CONFIG_FILE;
- environment variables (ENV_*) naming the scratch space, the metrics port and the image;
- the exit code (finetune_api.exit_codes) and a TerminationMessage at TERMINATION_LOG;
- the FineTuneJob's status, which both write, each only its own fields (TRAINER_FIELDS and
  OPERATOR_FIELDS), through the typed status model (OWNED: the FineTuneExperiment's is the operator's);
- manifest.json, written last under spec.output.uri: a job that succeeded published there.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field

from .storage_uri import parse_uri
from .v1alpha1.base import SpecModel
from .v1alpha1.enums import FailureClass
from .v1alpha1.experiment_status import FineTuneExperimentStatus
from .v1alpha1.status import FineTuneJobStatus, OutputStatus

CONTAINER = "trainer"
CONFIG_MOUNT = "/etc/finetune"
CONFIG_KEY = "finetunejob.yaml"
CONFIG_FILE = f"{CONFIG_MOUNT}/{CONFIG_KEY}"
WORK_DIR = "/work"
STATUS_FILE = f"{WORK_DIR}/progress.json"
HF_HOME = f"{WORK_DIR}/hf"
TERMINATION_LOG = "/dev/termination-log"
MANIFEST = "manifest.json"

ENV_TERMINATION_LOG = "FINETUNE_TERMINATION_LOG"
ENV_METRICS_PORT = "FINETUNE_METRICS_PORT"
ENV_WORK_DIR = "FINETUNE_WORK_DIR"
ENV_STATUS_FILE = "FINETUNE_STATUS_FILE"
ENV_IMAGE = "FINETUNE_IMAGE"
# How long a rank of a distributed job waits in a collective for its peers before it fails (the operator sets it
# for jobs of several processes). A peer whose pod is deleted closes its sockets and fails the others at once;
# this bounds the wait for one whose node vanished without a word.
ENV_COLLECTIVE_TIMEOUT = "FINETUNE_COLLECTIVE_TIMEOUT_SECONDS"
DEFAULT_COLLECTIVE_TIMEOUT_SECONDS = 1800  # torch.distributed's own default, for a trainer run outside a pod
# MLflow's own variable names: the tracking server, and the credentials a spec.tracking.mlflow.secretRef holds.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
TRACKING_CREDENTIALS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)  # torch.distributed's own default, for a trainer run outside a pod


class Owner(StrEnum):
    TRAINER = "trainer"
    OPERATOR = "operator"


# The trainer knows how training goes; the operator knows what Kubernetes observed. Phase, conditions
# and output come from observed state only, so they are the operator's even though the trainer causes them.
TRAINER_FIELDS = frozenset({"progress", "metrics", "last_checkpoint", "storage", "tracking"})
OPERATOR_FIELDS = frozenset(FineTuneJobStatus.model_fields) - TRAINER_FIELDS
# A FineTuneExperiment's status is the operator's alone: its report Job publishes to S3 and writes no status.
Status = FineTuneJobStatus | FineTuneExperimentStatus
OWNED: dict[type[SpecModel], dict[Owner, frozenset[str]]] = {
    FineTuneJobStatus: {Owner.TRAINER: TRAINER_FIELDS, Owner.OPERATOR: OPERATOR_FIELDS},
    FineTuneExperimentStatus: {
        Owner.TRAINER: frozenset(),
        Owner.OPERATOR: frozenset(FineTuneExperimentStatus.model_fields),
    },
}


def owned_part(status: Status, owner: Owner) -> dict[str, Any]:
    """The fields of `status` that `owner` writes, as they go on the wire (camelCase, unset left out)."""
    fields = set(OWNED[type(status)][owner])
    body: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True, mode="json", include=fields)
    return body


def status_patch(status: Status, owner: Owner) -> dict[str, Any]:
    """The merge-patch body `owner` sends; refuses a status that sets the other side's fields."""
    foreign = {n for n in status.model_fields_set if getattr(status, n) is not None} - OWNED[type(status)][owner]
    if foreign:
        raise ValueError(f"the {owner} does not own {type(status).__name__} fields {sorted(foreign)}")
    return owned_part(status, owner)


def published_output(output_uri: str) -> OutputStatus:
    """Where a succeeded job's output is: the trainer exits 0 only after writing MANIFEST there."""
    return OutputStatus(uri=output_uri, manifest=str(parse_uri(output_uri).join(MANIFEST)))


class TerminationMessage(SpecModel):
    """What a failed trainer writes to TERMINATION_LOG; the operator copies it into status.failure."""

    reason: FailureClass = Field(description="The failure class.")
    message: str = Field(default="", max_length=4096, description="What happened and how to fix it.")


def collective_timeout_seconds(env: Mapping[str, str]) -> int:
    value = env.get(ENV_COLLECTIVE_TIMEOUT, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_COLLECTIVE_TIMEOUT_SECONDS


def in_cluster_server(env: Mapping[str, str]) -> str:
    """The API server's URL inside a pod, from the variables the kubelet sets (as client-go reads them).

    Both sides dial it: the operator (kopf's own login always dials kubernetes.default.svc) and the
    trainer's status hook; on a host network without cluster DNS only these variables are right.
    """
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return "https://kubernetes.default.svc"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
