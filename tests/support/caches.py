"""Who may build a heavy cache: the setup stage may, the tests may not.

`python -m tests.setup` (run first by `make test`) builds every cache the tests use. Under pytest
the conftest turns building off, for the session and every process it starts: a fixture whose
cache is missing then fails at once, naming the command that builds it, instead of building in
silence for minutes inside a test. `make demo` and the benchmarks still build what they need.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SETUP_COMMAND = "python -m tests.setup"
CACHES_ONLY_ENV = "FINETUNE_CACHES_ONLY"
# The setup stage's steps, in the order it runs them; an error names the step that builds its cache.
PACKAGES_STEP = "system packages"
VIRTUALENV_STEP = "virtualenv"
GO_STEP = "Go binaries"
IMAGES_STEP = "base and images"
CONTAINERD_STEP = "containerd import"
ASSETS_STEP = "models and data"
PROMETHEUS_STEP = "Prometheus"


def cache_dir() -> Path:
    """Where every heavy cache lives, outside the repo (scripts/env.sh exports the same default)."""
    return Path(os.environ.get("FINETUNE_CACHE", Path.home() / ".cache" / "finetune-operator"))


class MissingCache(RuntimeError):
    """A cache the tests need is not built on this machine."""


def caches_only() -> bool:
    return os.environ.get(CACHES_ONLY_ENV) == "1"


@contextmanager
def only_caches() -> Iterator[None]:
    """Building off for the block: every cache lookup either finds its cache or raises MissingCache."""
    before = os.environ.get(CACHES_ONLY_ENV)
    os.environ[CACHES_ONLY_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[CACHES_ONLY_ENV]
        else:
            os.environ[CACHES_ONLY_ENV] = before


def missing(what: str, step: str) -> MissingCache:
    """The error of a cache lookup that may not build: what is missing, and the command that builds it."""
    return MissingCache(
        f"Not built on this machine: {what}. Run `source scripts/env.sh && {SETUP_COMMAND}` first "
        f"(its step '{step}'; `make test` runs it), then rerun the tests."
    )
