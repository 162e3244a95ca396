"""The operator's settings: typed, documented, read once from the environment (the Helm chart sets them)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from finetune_api.pod_contract import DEFAULT_COLLECTIVE_TIMEOUT_SECONDS
from finetune_api.resolve import PodDefaults
from finetune_api.v1alpha1 import defaults


class OperatorSettings(BaseSettings):
    """FINETUNE_OPERATOR_<NAME> environment variables."""

    model_config = SettingsConfigDict(env_prefix="FINETUNE_OPERATOR_", frozen=True)

    trainer_image: str = Field(default=defaults.TRAINER_IMAGE, description="Default trainer image.")
    image_pull_policy: str = Field(default="IfNotPresent", description="Pull policy of trainer pods.")
    trainer_metrics_port: int = Field(default=9090, description="Port of the trainer's Prometheus endpoint.")
    rendezvous_port: int = Field(default=29500, description="torch.distributed rendezvous port for multi-node jobs.")
    rendezvous_timeout_seconds: int = Field(
        default=300,
        ge=10,
        description="Seconds a rank of a multi-node job waits for its peers at the rendezvous before it fails "
        "(torchrun's own default is 600).",
    )
    collective_timeout_seconds: int = Field(
        default=DEFAULT_COLLECTIVE_TIMEOUT_SECONDS,
        ge=30,
        description="Seconds a rank of a distributed job waits in a collective for a peer before it fails, so the "
        "Job restarts the group from its last checkpoint. A deleted peer fails the others at once; this bounds "
        "the wait for one whose node vanished. Keep it above the longest checkpoint upload.",
    )
    work_dir_size: str = Field(default="100Gi", description="sizeLimit of the trainer's scratch emptyDir.")
    shm_size: str = Field(default="8Gi", description="sizeLimit of /dev/shm (memory-backed) for data loaders and NCCL.")
    default_cpu: str = Field(default=defaults.POD_CPU, description="CPU per trainer pod when the spec gives none.")
    default_memory: str = Field(
        default=defaults.POD_MEMORY, description="Memory per trainer pod when the spec gives none."
    )
    gpu_tolerations: bool = Field(default=True, description="Tolerate the nvidia.com/gpu NoSchedule taint on GPU pods.")
    termination_grace_seconds: int = Field(
        default=120, description="Time a SIGTERMed trainer has to save its checkpoint."
    )
    trainer_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment of trainer containers (JSON object), e.g. HTTPS_PROXY or NCCL settings; "
        "never credentials, and never a variable the operator sets itself.",
    )
    mlflow_uri: str = Field(
        default="",
        description="MLflow tracking server of jobs whose spec.tracking.mlflow names no uri "
        "(Helm: tracking.mlflow.uri).",
    )
    metrics_port: int = Field(default=8080, description="Port of the operator's own Prometheus endpoint; 0: none.")
    heartbeat_file: str = Field(
        default="",
        description="File the event loop touches for the liveness probe (python -m finetune_operator.liveness); "
        "empty: no heartbeat.",
    )
    heartbeat_interval: float = Field(default=5.0, gt=0, description="Seconds between heartbeats.")
    heartbeat_max_age: float = Field(default=60.0, gt=0, description="A heartbeat older than this fails the probe.")
    phase_gauge_interval: float = Field(default=15.0, description="Seconds between recounts of FineTuneJobs by phase.")
    workers: int = Field(
        default=128,
        ge=1,
        le=256,
        description="Reconciles run at once. Each waits on a chain of API calls, not on the CPU, so this far "
        "exceeds the cores (BENCHMARKS.md: 16 -> 128 cut create -> Job p99 for a burst of 1000 from 27 s to 6 s).",
    )
    status_workers: int = Field(
        default=16, ge=1, le=64, description="Threads that sync FineTuneJob status from their Jobs and pods."
    )
    status_sync_delay: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description="Seconds a status sync waits after the first Job or pod event, so a burst of them is read once.",
    )

    @property
    def pod_defaults(self) -> PodDefaults:
        """What resolving a spec fills in for its pods: the image, cpu and memory the chart set."""
        return PodDefaults(image=self.trainer_image, cpu=self.default_cpu, memory=self.default_memory)
