"""The closed vocabularies of the spec. Each value is what users write in YAML."""

from enum import StrEnum


class TaskType(StrEnum):
    SEQUENCE_CLASSIFICATION = "sequence-classification"
    CAUSAL_LM = "causal-lm"


class CausalFormat(StrEnum):
    PROMPT_COMPLETION = "prompt-completion"
    CHAT = "chat"
    TEXT = "text"


class DataFormat(StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


class MethodType(StrEnum):
    FULL = "full"
    FEATURE_EXTRACTION = "feature-extraction"
    PARTIAL = "partial"
    LAYERWISE_LR = "layerwise-lr"
    LORA = "lora"
    QLORA = "qlora"
    PROMPT_TUNING = "prompt-tuning"
    PREFIX_TUNING = "prefix-tuning"
    IA3 = "ia3"

    @property
    def is_peft(self) -> bool:
        """Methods that train a PEFT adapter beside frozen base weights."""
        return self.value in _PEFT_METHODS


_PEFT_METHODS = frozenset({"lora", "qlora", "prompt-tuning", "prefix-tuning", "ia3"})


class GateAgainst(StrEnum):
    """What the tuned model is compared with at the gate."""

    BASELINE = "baseline"
    FEW_SHOT = "fewShot"


class Precision(StrEnum):
    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class Scheduler(StrEnum):
    LINEAR = "linear"
    COSINE = "cosine"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant-with-warmup"
    COSINE_WITH_RESTARTS = "cosine-with-restarts"
    POLYNOMIAL = "polynomial"


class Optimizer(StrEnum):
    ADAMW = "adamw"
    SGD = "sgd"
    ADAFACTOR = "adafactor"


class ServingTarget(StrEnum):
    """The server an output must load in (finetune_api.serving holds its rules)."""

    VLLM = "vllm"


class SaveMode(StrEnum):
    ADAPTER = "adapter"
    MERGED = "merged"
    BOTH = "both"


class Metric(StrEnum):
    ACCURACY = "accuracy"
    MACRO_F1 = "macro-f1"
    EVAL_LOSS = "eval-loss"
    PERPLEXITY = "perplexity"

    @property
    def higher_is_better(self) -> bool:
        return self in (Metric.ACCURACY, Metric.MACRO_F1)


METRICS_BY_TASK = {
    TaskType.SEQUENCE_CLASSIFICATION: (Metric.ACCURACY, Metric.MACRO_F1, Metric.EVAL_LOSS),
    TaskType.CAUSAL_LM: (Metric.EVAL_LOSS, Metric.PERPLEXITY),
}


class QuantType(StrEnum):
    NF4 = "nf4"
    FP4 = "fp4"


class ComputeDtype(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class AddressingStyle(StrEnum):
    AUTO = "auto"
    PATH = "path"
    VIRTUAL = "virtual"


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"  # Kueue holds the Job until it admits it (status.conditions' Queued says why)
    PREEMPTED = "Preempted"  # Kueue took the quota back: the pods save a checkpoint and stop, then it queues again
    INITIALIZING = "Initializing"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"

    @property
    def is_terminal(self) -> bool:
        """Succeeded and Failed are final: nothing about the job changes after them."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class FailureClass(StrEnum):
    """Why a job failed. Trainer exit codes map onto the first seven (see the trainer's exit codes)."""

    CONFIG_ERROR = "ConfigError"
    DATA_ERROR = "DataError"
    STORAGE_ERROR = "StorageError"
    OUT_OF_MEMORY = "OutOfMemory"
    PREEMPTED = "Preempted"
    GATE_NOT_MET = "GateNotMet"
    INTERNAL_ERROR = "InternalError"
    IMAGE_PULL_ERROR = "ImagePullError"
    UNSCHEDULABLE = "Unschedulable"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    INVALID_SPEC = "InvalidSpec"
