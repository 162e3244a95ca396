"""A real Prometheus server (Debian's package, run on 127.0.0.1) scrapes a local trainer run and the
operator's metrics; the loss series and FineTuneJobs by phase come back from its query API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_operator.metrics import OperatorMetrics
from finetune_trainer.main import RunOptions, execute
from tests.conftest import free_port
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


def _prometheus_binary() -> Path:
    """Debian's prometheus, unpacked once into the cache (it links only libc)."""
    cache = Path(os.environ.get("FINETUNE_CACHE", Path.home() / ".cache" / "finetune-operator")) / "prometheus"
    binary = cache / "usr" / "bin" / "prometheus"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory() as tmp:
        get = ["apt-get", "download", "prometheus"]
        if subprocess.run(get, cwd=tmp, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
            subprocess.run(get, cwd=tmp, capture_output=True, check=True)
        deb = next(Path(tmp).glob("prometheus_*.deb"))
        staging = cache.with_suffix(".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(cache, ignore_errors=True)
        staging.rename(cache)
    return binary


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    trainer_port, operator_port, web_port = free_port(), free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: trainer\n    static_configs: [{{targets: ['127.0.0.1:{trainer_port}']}}]\n"
        f"  - job_name: operator\n    static_configs: [{{targets: ['127.0.0.1:{operator_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [str(_prometheus_binary()), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{web_port}"
    for _ in range(100):
        try:
            if urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield url, trainer_port, operator_port
    proc.terminate()
    proc.wait(timeout=20)


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    body = urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=5).read()
    data = json.loads(body)
    assert data["status"] == "success", data
    return list(data["data"]["result"])


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

    loss = _query(url, 'max_over_time(finetune_trainer_train_loss{finetunejob="scraped"}[10m])')
    assert loss and 0 < float(loss[0]["value"][1]) < 10
    steps = _query(url, 'max_over_time(finetune_trainer_step{finetunejob="scraped"}[10m])')
    assert steps and float(steps[0]["value"][1]) >= 20
    rising = _query(url, 'changes(finetune_trainer_step{finetunejob="scraped"}[10m])')
    assert rising and float(rising[0]["value"][1]) >= 2, "Prometheus saw the step counter rise"
    phases = {r["metric"]["phase"]: float(r["value"][1]) for r in _query(url, "finetune_operator_finetunejobs")}
    assert phases["Running"] == 2 and phases["Succeeded"] == 1
