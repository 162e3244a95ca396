"""spec.resources: what each trainer pod asks the scheduler for."""

from __future__ import annotations

from pydantic import Field

from .base import QUANTITY, SpecModel


class ResourcesSpec(SpecModel):
    """Compute per node. Training on several nodes runs one pod per node through torch.distributed."""

    gpus: int = Field(
        default=0, ge=0, le=16, description="GPUs per node; one training process per GPU. 0 trains on CPU."
    )
    nodes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Nodes (pods); more than one makes an Indexed Job with a rendezvous Service. With gpus 0, "
        "each pod is one CPU rank of a gloo group.",
    )
    cpu: str | None = Field(
        default=None, max_length=32, pattern=QUANTITY, description="CPU request and limit per pod, e.g. 8 or 7500m."
    )
    memory: str | None = Field(
        default=None, max_length=32, pattern=QUANTITY, description="Memory request and limit per pod, e.g. 64Gi."
    )
    gpu_type: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="Run only on nodes with this GPU model (the nvidia.com/gpu.product node label), e.g. NVIDIA-H100-80GB-HBM3.",
    )
    gpu_resource_name: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        pattern=r"^[a-z0-9.-]+/[a-z0-9.-]+$",
        description="The extended resource name of a GPU on this cluster's nodes.",
    )
