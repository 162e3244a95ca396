"""`finetune run`: the trainer from the command line, without Kubernetes.

The trainer's own command, added to `finetune` through the `finetune.commands` entry point (register);
this module stays light (no torch) so listing the commands costs nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_api.measurements import EVAL_KEYS

from .artifacts.report import forgetting_line
from .errors import ConfigError
from .job_file import is_experiment_file, load_job
from .overrides import with_overrides

if TYPE_CHECKING:
    from .training.results import RunResult


def register(sub: Any) -> None:
    """Add `run` to the `finetune` command's subparsers."""
    p = sub.add_parser(
        "run",
        help="run a FineTuneJob locally through the trainer (CPU or GPU); an experiment runs its variants in turn",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--output", metavar="DIR", help="write the output here instead of spec.output.uri")
    p.add_argument("--s3-endpoint", metavar="URL", help="override spec.s3.endpoint")
    p.add_argument("--work-dir", metavar="DIR", help="scratch space for downloads and checkpoints")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_from_cli)


def print_summary(result: RunResult, out=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    m = result.measured
    few = m.few_shot
    print("\n" + "=" * 64, file=out)
    shots = f"few-shot ({few.shots})" if few else ""
    print(f"{'metric':<16}{'baseline (zero-shot)':>24}{shots:>16}{'tuned':>14}", file=out)
    for key in EVAL_KEYS:
        if key in m.tuned:
            cells = [_cell(m.baseline.get(key), 24), _cell(few.scores.get(key), 16) if few else " " * 16]
            print(f"{key.removeprefix('eval_'):<16}{''.join(cells)}{m.tuned[key]:>14.4f}", file=out)
    if few and few.not_applicable:
        print(f"few-shot: not applicable: {few.not_applicable}", file=out)
    if m.forgetting:
        print(f"forgetting: reference perplexity {forgetting_line(m.forgetting)}", file=out)
    if m.gate:
        print(m.gate.explanation, file=out)
    print(
        f"trainable parameters: {m.cost.trainable_parameters or 0:,} of {m.cost.total_parameters or 0:,}; "
        f"steps: {m.steps}; {m.cost.train_seconds or 0:.0f} s",
        file=out,
    )
    for line in m.hygiene.lines():
        print(f"data: {line}", file=out)
    print(f"output: {result.output_uri}  manifest: {result.manifest_uri}", file=out)
    print("=" * 64, file=out)


def _cell(value: float | None, width: int) -> str:
    return f"{'-' if value is None else f'{value:.4f}':>{width}}"


def run_from_cli(args: argparse.Namespace) -> int:
    from .main import RunOptions, configure_logging, execute

    configure_logging()
    if is_experiment_file(Path(args.file)):
        from .experiment.cli import run_experiment_from_cli

        return run_experiment_from_cli(args)
    try:
        job = with_overrides(load_job(Path(args.file)), args.output, args.s3_endpoint)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.gettempdir()) / "finetune" / job.metadata.name
    code, result = execute(
        job,
        RunOptions(
            work_dir=work, metrics_port=args.metrics_port, progress_bar=not args.no_progress, termination_log=os.devnull
        ),
    )
    if result:
        print_summary(result)
    return code
