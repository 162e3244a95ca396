"""`python -m finetune_operator [--peering=NAME | --standalone] [--namespace=NS ...] [--log-format=json]`.

The one place the operator's kopf command line is written: the image's entrypoint, the chart's Deployment
and the tests all start the operator through it. Without --namespace it watches every namespace.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

HANDLERS = "finetune_operator.handlers.main"


def kopf_args(options: Sequence[str]) -> list[str]:
    """kopf's arguments for the operator with these options (peering, namespaces, log format)."""
    scope = [] if any(o.startswith(("--namespace", "-n")) for o in options) else ["--all-namespaces"]
    return ["run", *options, *scope, "-m", HANDLERS]


def main(argv: Sequence[str] | None = None) -> None:
    from kopf.cli import main as kopf_main

    kopf_main(args=kopf_args(sys.argv[1:] if argv is None else argv), prog_name="finetune_operator")


if __name__ == "__main__":
    main()
