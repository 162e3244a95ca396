"""The typed FineTuneJob spec: the single source of truth for the CRD, the CLI, the operator and the trainer."""

from .enums import (
    CausalFormat,
    DataFormat,
    FailureClass,
    MethodType,
    Metric,
    Phase,
    Precision,
    SaveMode,
    ServingTarget,
    TaskType,
)
from .job import FineTuneJob, FineTuneJobSpec
from .status import FineTuneJobStatus

__all__ = [
    "CausalFormat",
    "DataFormat",
    "FailureClass",
    "FineTuneJob",
    "FineTuneJobSpec",
    "FineTuneJobStatus",
    "MethodType",
    "Metric",
    "Phase",
    "Precision",
    "SaveMode",
    "ServingTarget",
    "TaskType",
]
