"""A real Prometheus server (Debian's package, run on 127.0.0.1) scrapes a local trainer run and the
operator's metrics; the loss series and FineTuneJobs by phase come back from its query API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finetune_operator.metrics import OperatorMetrics
from finetune_trainer.main import RunOptions, execute
from tests.conftest import free_port
from tests.integration.trainer.jobs import tweets_job
from tests.prometheus import query, run_prometheus

pytestmark = pytest.mark.training


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    trainer_port, operator_port = free_port(), free_port()
    with run_prometheus({"trainer": trainer_port, "operator": operator_port}, tmp_path) as url:
        yield url, trainer_port, operator_port


def test_prometheus_scrapes_trainer_and_operator(
    prometheus: tuple[str, int, int], shipped_s3: str, tmp_path: Path
) -> None:
    url, trainer_port, operator_port = prometheus
    operator = OperatorMetrics()
    operator.serve(operator_port)
    operator.transition(None, "Running")
    operator.transition(None, "Running")
    operator.transition(None, "Succeeded")

    job = tweets_job(
        "scraped",
        shipped_s3,
        dataset={"maxSamples": 480, "maxEvalSamples": 32},
        training={"maxSteps": 30, "loggingSteps": 2},
    )
    done: dict[str, int] = {}
    opts = RunOptions(
        work_dir=tmp_path / "w", metrics_port=trainer_port, progress_bar=False, termination_log=str(tmp_path / "t")
    )
    worker = threading.Thread(target=lambda: done.setdefault("code", execute(job, opts)[0]))
    worker.start()
    worker.join(timeout=600)
    assert done.get("code") == 0
    time.sleep(2)

    loss = query(url, 'max_over_time(finetune_trainer_train_loss{finetunejob="scraped"}[10m])')
    assert loss and 0 < float(loss[0]["value"][1]) < 10
    steps = query(url, 'max_over_time(finetune_trainer_step{finetunejob="scraped"}[10m])')
    assert steps and float(steps[0]["value"][1]) >= 20
    rising = query(url, 'changes(finetune_trainer_step{finetunejob="scraped"}[10m])')
    assert rising and float(rising[0]["value"][1]) >= 2, "Prometheus saw the step counter rise"
    phases = {r["metric"]["phase"]: float(r["value"][1]) for r in query(url, "finetune_operator_finetunejobs")}
    assert phases["Running"] == 2 and phases["Succeeded"] == 1
