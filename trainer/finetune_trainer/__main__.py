"""`python -m finetune_trainer --config /etc/finetune/job.yaml`: the trainer pod's entrypoint (each rank's, under
torchrun, for a job of several processes)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from finetune_api.pod_contract import (
    CONFIG_FILE,
    ENV_METRICS_PORT,
    ENV_STATUS_FILE,
    ENV_WORK_DIR,
)
from finetune_api.redact import redact

from .errors import EXIT_CODES, termination_log, write_termination_message
from .job_file import load_job
from .main import RunOptions, configure_logging, execute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune_trainer")
    parser.add_argument(
        "--config", required=True, help=f"the FineTuneJob manifest (the operator mounts it at {CONFIG_FILE})"
    )
    parser.add_argument("--work-dir", default=os.environ.get(ENV_WORK_DIR, "/tmp/finetune"))  # noqa: S108 - an emptyDir in pods
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get(ENV_METRICS_PORT, "0")))
    parser.add_argument("--status-file", default=os.environ.get(ENV_STATUS_FILE))
    parser.add_argument("--termination-log", default=termination_log())
    parser.add_argument("--progress-bar", action="store_true")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        job = load_job(Path(args.config))
    except Exception as exc:  # noqa: BLE001 - a bad config file is a config error, whatever broke
        from finetune_api.v1alpha1.enums import FailureClass

        write_termination_message(FailureClass.CONFIG_ERROR, str(exc), args.termination_log)
        print(f"config error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CODES[FailureClass.CONFIG_ERROR]
    rank = int(os.environ.get("RANK", "0"))
    opts = RunOptions(
        work_dir=Path(args.work_dir),
        metrics_port=args.metrics_port if rank == 0 else 0,
        progress_bar=args.progress_bar,
        status_file=Path(args.status_file) if args.status_file and rank == 0 else None,
        termination_log=args.termination_log,
        kube_status=rank == 0,
    )
    code, _ = execute(job, opts)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
