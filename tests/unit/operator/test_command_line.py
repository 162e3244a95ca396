"""The operator's one kopf command line (python -m finetune_operator), as the image, the chart and the tests use it."""

from __future__ import annotations

from finetune_operator.__main__ import HANDLERS, kopf_args


def test_without_namespaces_it_watches_them_all() -> None:
    assert kopf_args(["--peering=finetune", "--log-format=json"]) == [
        "run", "--peering=finetune", "--log-format=json", "--all-namespaces", "-m", HANDLERS,
    ]  # fmt: skip


def test_named_namespaces_replace_all_namespaces() -> None:
    args = kopf_args(["--standalone", "--namespace=team-a", "--namespace=team-b"])
    assert "--all-namespaces" not in args and args[-2:] == ["-m", HANDLERS]
    assert args.count("--namespace=team-a") == 1 and "--namespace=team-b" in args
