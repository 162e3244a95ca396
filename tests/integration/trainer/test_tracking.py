"""MLflow tracking against a real `mlflow server` (issue 24): what a run records, read back through MLflow's own
client, and a tracking server that is dead or hung costs a warning, never the run."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finetune_trainer.main import RunOptions, execute
from finetune_trainer.tracking.tracker import Tracker
from tests.integration.trainer.jobs import tweets_job

pytestmark = pytest.mark.training


def test_a_tracked_run_is_read_back_through_mlflows_client(shipped_s3: str, mlflow_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    job = tweets_job(
        "tracked",
        shipped_s3,
        tracking={"mlflow": {"uri": mlflow_uri, "experiment": "issue-24", "registeredModel": "tweets-sentiment"}},
    )
    options = RunOptions(work_dir=tmp_path / "run", progress_bar=False, termination_log=str(tmp_path / "t"))
    code, result = execute(job, options)
    assert code == 0 and result is not None, (tmp_path / "t").read_text()
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("issue-24")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    params = run.data.params
    assert params["method.type"] == "lora" and params["training.maxSteps"] == "12", params
    assert params["task.labelColumn"] == "sentiment" and "s3.endpoint" in params
    metrics = run.data.metrics
    measured = result.measured
    assert metrics["tuned.eval_accuracy"] == pytest.approx(measured.tuned["eval_accuracy"])
    assert metrics["baseline.eval_accuracy"] == pytest.approx(measured.baseline["eval_accuracy"])
    assert metrics["cost.train_seconds"] > 0 and metrics["cost.trainable_parameters"] > 0, metrics
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == [4, 8, 12], f"per logged step, each once: {steps}"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"README.md", "loss_curve.png", "manifest.json", "metrics.json"} <= artifacts, artifacts
    (version,) = client.search_model_versions("name='tweets-sentiment'")
    assert version.source == "s3://models/out/tracked/" and version.run_id == run.info.run_id, version
    print(f"MLflow run {run.info.run_id}: params {dict(sorted(params.items()))}")
    print(f"metrics {dict(sorted(metrics.items()))}")


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A server that accepts connections and never answers: the slow dependency."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _tracker(uri: str, said: dict[str, object]) -> Tracker:
    return Tracker(uri, "e", "r", lambda: None, lambda run_id: None, lambda **kw: said.update(kw))


def test_a_hung_tracking_server_costs_at_most_the_close_wait(hung_server: str) -> None:
    said: dict[str, object] = {}
    tracker = _tracker(hung_server, said)
    started = time.monotonic()
    for step in range(1, 50):
        tracker.metrics({"train_loss": 1.0 / step}, step)  # the loop never waits on the server
    assert time.monotonic() - started < 1.0
    tracker.close("FINISHED", wait=3)
    assert time.monotonic() - started < 6, "close waited past its bound"
    assert "did not take the run's last records within 3 s" in str(said.get("tracking_failing")), said


def test_a_dead_tracking_server_is_a_warning_and_the_records_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # closed on leaving: nothing listens there
    said: dict[str, object] = {}
    tracker = _tracker(f"http://127.0.0.1:{port}", said)
    started = time.monotonic()
    for step in range(1, 20):
        tracker.metrics({"train_loss": 1.0}, step)
    tracker.close("FINISHED", wait=30)
    assert time.monotonic() - started < 30
    assert "failed on metrics of step 1" in str(said.get("tracking_failing")), said
    assert tracker.run_id is None
    assert "training goes on without it" in caplog.text


def test_an_experiment_is_a_parent_run_with_its_variants_nested(
    shipped_s3: str, mlflow_uri: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from finetune_api.experiment.expand import expand
    from finetune_api.v1alpha1.experiment import FineTuneExperiment
    from finetune_trainer.experiment.local import run_experiment

    template = tweets_job("unused", shipped_s3, training={"maxSteps": 8, "batchSize": 16, "loggingSteps": 4})
    spec = template.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    spec["tracking"] = {"mlflow": {"uri": mlflow_uri, "experiment": "comparisons"}}
    spec["output"] = {"uri": "s3://models/out/ranks/"}
    experiment = FineTuneExperiment.model_validate(
        {
            "apiVersion": "finetune.dev/v1alpha1",
            "kind": "FineTuneExperiment",
            "metadata": {"name": "ranks", "namespace": "tests"},
            "spec": {
                "template": spec,
                "variants": [{"name": f"r{r}", "method": {"type": "lora", "r": r}} for r in (4, 8)],
                "select": {"metric": "accuracy"},
            },
        }
    )
    outcome = run_experiment(experiment, expand(experiment), tmp_path, progress_bar=False, out=io.StringIO())
    assert [r.phase for r in outcome.rows] == ["Succeeded", "Succeeded"], outcome.rows
    client = MlflowClient(tracking_uri=mlflow_uri)
    found = client.get_experiment_by_name("comparisons")
    assert found is not None
    runs = {r.info.run_name: r for r in client.search_runs([found.experiment_id])}
    assert set(runs) == {"ranks", "ranks-r4", "ranks-r8"}, set(runs)
    parent = runs["ranks"]
    for child in ("ranks-r4", "ranks-r8"):
        assert runs[child].data.tags.get("mlflow.parentRunId") == parent.info.run_id, runs[child].data.tags
        variant = child.removeprefix("ranks-")
        tuned = runs[child].data.metrics["tuned.eval_accuracy"]
        assert parent.data.metrics[f"{variant}.accuracy"] == pytest.approx(tuned), parent.data.metrics
    assert {"comparison.png", "comparison.md", "comparison.json"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }
    assert parent.info.status == "FINISHED" and parent.data.params["variants"] == "r4,r8"


def test_a_job_whose_tracking_server_is_dead_succeeds_and_says_so(
    shipped_s3: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    job = tweets_job("untracked", shipped_s3, tracking={"mlflow": {"uri": dead}})
    status = tmp_path / "status.json"
    options = RunOptions(
        work_dir=tmp_path / "run", progress_bar=False, termination_log=str(tmp_path / "t"), status_file=status
    )
    code, result = execute(job, options)
    assert code == 0 and result is not None and result.manifest_uri, (tmp_path / "t").read_text()
    reported = json.loads(status.read_text())
    assert reported["phase"] == "Succeeded" and f"MLflow at {dead} failed" in reported["tracking_failing"], reported
    assert "training goes on without it" in caplog.text
