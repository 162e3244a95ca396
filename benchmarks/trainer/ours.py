"""Variant (c): this trainer, driven through the same entry point a pod uses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from finetune_api.measurements import RunMeasurements


def run_job(spec: dict[str, Any]) -> RunMeasurements:
    """Run a FineTuneJob spec with local paths and return the trainer's metrics."""
    from finetune_api.v1alpha1.job import FineTuneJob
    from finetune_trainer.main import RunOptions, execute

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = {**spec, "output": {"uri": f"{root / 'out'}/", "checkpointEvery": 10_000_000, **spec.get("output", {})}}
        job = FineTuneJob.model_validate(
            {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "bench"}, "spec": spec}
        )
        log = root / "termination-log"
        code, result = execute(job, RunOptions(work_dir=root / "work", progress_bar=False, termination_log=str(log)))
        if code != 0 or result is None:
            raise SystemExit(f"this trainer failed with exit code {code}: {log.read_text() if log.exists() else ''}")
        return result.measured
