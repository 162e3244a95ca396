"""The `finetune` command: validate manifests, print the CRD and the spec reference.

Commands of the other packages (the trainer's `finetune run`) plug in through entry points.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from .validation import Severity, validate_file

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
COMMANDS = "finetune.commands"  # entry point group: each names a register(subparsers) function


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


def _unavailable(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"`finetune {name}` needs the dependencies of the package that provides it ({exc})", file=sys.stderr)
        return EXIT_USAGE

    return run


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

    # Other packages add their commands through the `finetune.commands` entry point group (the trainer
    # adds `run`): this package depends on none of them, and a base install simply lacks them.
    for entry in sorted(entry_points(group=COMMANDS), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except ImportError as exc:  # installed metadata, but not the package's own dependencies
            p = sub.add_parser(entry.name, help=f"unavailable: {exc}")
            p.add_argument("args", nargs=argparse.REMAINDER)
            p.set_defaults(func=_unavailable(entry.name, exc))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
