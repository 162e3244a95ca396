"""The trainer's Prometheus endpoint, scraped during a run, shows the step counter rising and the loss."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from finetune_trainer.main import RunOptions, execute
from tests.conftest import free_port
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


def _value(text: str, name: str) -> float | None:
    match = re.search(rf"^{name}\{{[^}}]*finetunejob=\"metrics\"[^}}]*\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_scrape_during_run(shipped_s3: str, tmp_path: Path) -> None:
    port = free_port()
    job = tweets_job(
        "metrics",
        shipped_s3,
        dataset={"maxSamples": 480, "maxEvalSamples": 32},
        training={"maxSteps": 30, "loggingSteps": 2},
    )
    outcome: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault(
            "code",
            execute(
                job,
                RunOptions(
                    work_dir=tmp_path, metrics_port=port, progress_bar=False, termination_log=str(tmp_path / "t")
                ),
            )[0],
        )
    )
    worker.start()
    steps: list[float] = []
    losses: list[float] = []
    phases: set[str] = set()
    deadline = time.time() + 300
    while worker.is_alive() and time.time() < deadline:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        step, loss = _value(text, "finetune_trainer_step"), _value(text, "finetune_trainer_train_loss")
        if step is not None and (not steps or step != steps[-1]):
            steps.append(step)
        if loss is not None:
            losses.append(loss)
        phases.update(re.findall(r'^finetune_trainer_phase\{[^}]*phase="(\w+)"\} 1\.0$', text, re.M))
        time.sleep(0.2)
    worker.join(timeout=300)
    assert outcome.get("code") == 0
    assert len(steps) >= 3 and steps == sorted(steps) and steps[-1] > steps[0], steps
    assert losses and all(0 < x < 10 for x in losses)
    assert {"Baseline", "Running"} <= phases, phases
