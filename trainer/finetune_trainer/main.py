"""Run a job and turn every outcome into an exit code and a termination message."""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from finetune_api.redact import install_log_redaction
from finetune_api.v1alpha1.enums import FailureClass
from finetune_api.v1alpha1.job import FineTuneJob

from .errors import EXIT_CODES, TrainerError, write_termination_message
from .observability.progress import BarSink, Reporter, Sink, StatusFileSink
from .storage.retry import TALLY
from .training.results import RunResult
from .training.run import run_job

log = logging.getLogger("finetune_trainer")


@dataclass
class RunOptions:
    work_dir: Path
    metrics_port: int = 0
    progress_bar: bool = True
    status_file: Path | None = None
    termination_log: str | None = None
    kube_status: bool = False  # patch the FineTuneJob's status (in a pod, rank 0)
    downloads: Path | None = None  # shared data/model cache (an experiment's runs); default work_dir


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install_log_redaction()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:
        pass
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def execute(job: FineTuneJob, opts: RunOptions) -> tuple[int, RunResult | None]:
    """Run the job; return (exit code, result). Never raises: failures become exit codes."""
    sinks: list[Sink] = []
    if opts.progress_bar:
        sinks.append(BarSink())
    if opts.status_file:
        sinks.append(StatusFileSink(opts.status_file))
    if opts.metrics_port:
        from .observability.prometheus import PrometheusSink

        sinks.append(PrometheusSink(job.metadata.namespace or "default", job.metadata.name, opts.metrics_port))
    if opts.kube_status:
        from .observability.kube_status import KubernetesStatusSink

        kube = KubernetesStatusSink.in_cluster(job.metadata.namespace or "default", job.metadata.name)
        if kube is not None:
            sinks.append(kube)
    reporter = Reporter(sinks)

    def storage_retried() -> None:
        reporter.update(storage_retries=TALLY.snapshot(), storage_retrying=TALLY.retrying())

    TALLY.listeners.append(storage_retried)
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = run_job(job, opts.work_dir, reporter, opts.downloads)
        return 0, result
    except TrainerError as exc:
        reporter.update(phase="Failed")
        log.error("%s: %s", exc.failure, exc.message)
        write_termination_message(exc.failure, exc.message, opts.termination_log)
        return exc.exit_code, None
    except MemoryError:
        reporter.update(phase="Failed")
        write_termination_message(FailureClass.OUT_OF_MEMORY, "out of host memory", opts.termination_log)
        return EXIT_CODES[FailureClass.OUT_OF_MEMORY], None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: classify, report, exit
        reporter.update(phase="Failed")
        log.error("internal error:\n%s", traceback.format_exc())
        write_termination_message(FailureClass.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", opts.termination_log)
        return EXIT_CODES[FailureClass.INTERNAL_ERROR], None
    finally:
        TALLY.listeners.remove(storage_retried)
        reporter.close()
