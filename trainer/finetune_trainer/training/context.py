"""What every stage of one run reads: the resolved job, the data, the tokenizer, where the model is, the
reporter and the process group. Built once the model's config is read; the stages take it whole."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_api.resolved import ResolvedJob, ResolvedSpec

from ..observability.progress import Reporter
from ..tracking.tracker import Tracker
from .data_plan import PreparedData


@dataclass(frozen=True)
class RunContext:
    job: ResolvedJob  # with the model's facts
    data: PreparedData
    tokenizer: Any
    model_dir: str
    dtype: torch.dtype
    work: Path  # downloads (shared by an experiment's runs)
    reporter: Reporter
    dist: Any  # accelerate's PartialState
    tracker: Tracker | None = None  # MLflow, on the main process of a tracked job

    @property
    def spec(self) -> ResolvedSpec:
        return self.job.spec
