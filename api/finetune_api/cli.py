"""The `finetune` command: validate manifests, print the CRD, run a job locally."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .validation import Severity, validate_file

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.files:
        for result in validate_file(Path(name)):
            label = f"{result.source}" + (f" ({result.name})" if result.name else "")
            if result.ok:
                print(f"ok      {label}")
            else:
                failed += 1
                print(f"invalid {label}: {len(result.errors)} problem(s)")
            for problem in result.problems:
                marker = "warning" if problem.severity == Severity.WARNING else "error"
                print(f"  {marker}: {problem.render()}")
    return EXIT_INVALID if failed else EXIT_OK


def _cmd_crd(args: argparse.Namespace) -> int:
    from .crd import render_crd_yaml

    text = render_crd_yaml(args.resource)
    if args.check:
        current = Path(args.check).read_text(encoding="utf-8")
        if current != text:
            print(
                f"{args.check} differs from the CRD generated from the spec; run `finetune crd > {args.check}`",
                file=sys.stderr,
            )
            return EXIT_INVALID
        print(f"{args.check} is up to date")
        return EXIT_OK
    sys.stdout.write(text)
    return EXIT_OK


def _cmd_reference(args: argparse.Namespace) -> int:
    from .crd.reference import render_reference

    sys.stdout.write(render_reference(args.resource))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        from finetune_trainer.cli import run_from_cli
    except ImportError as exc:
        print(f"`finetune run` needs the trainer: pip install 'finetune-operator[trainer]' ({exc})", file=sys.stderr)
        return EXIT_USAGE
    code: int = run_from_cli(args)
    return code


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from finetune_trainer.cli import demo
    except ImportError as exc:
        print(
            f"`finetune demo` needs the trainer: pip install 'finetune-operator[trainer,dev]' ({exc})", file=sys.stderr
        )
        return EXIT_USAGE
    code: int = demo(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finetune", description="Fine-tune language models: FineTuneJob tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="check FineTuneJob and FineTuneExperiment manifests: schema, CEL rules and deeper checks"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("crd", help="print the CustomResourceDefinition generated from the spec")
    p.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the generated CRD")
    p.add_argument("--resource", choices=("job", "experiment"), default="job", help="FineTuneJob or FineTuneExperiment")
    p.set_defaults(func=_cmd_crd)

    p = sub.add_parser("reference", help="print the spec reference (Markdown) generated from the spec")
    p.add_argument("--resource", choices=("job", "experiment"), default="job", help="FineTuneJob or FineTuneExperiment")
    p.set_defaults(func=_cmd_reference)

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
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="the embedded default: the README example on CPU against a local S3 server")
    p.add_argument("--file", default="examples/tweets-lora.yaml", help="the FineTuneJob to run")
    p.add_argument("--runs", default="runs", help="where the output is copied")
    p.add_argument("--max-samples", type=int, default=None, help="train on at most this many rows")
    p.add_argument("--max-eval-samples", type=int, default=None, help="evaluate on at most this many rows")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
