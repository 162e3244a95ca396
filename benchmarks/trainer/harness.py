"""Running each variant in its own process (so peak memory is its own) and comparing them."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SEED = 42  # every variant's first round; round r trains with SEED + r


@dataclass
class Stats:
    """What one variant measured: the training loop's wall time over the same examples."""

    seconds: float
    samples: int
    real_tokens: int  # non-pad tokens the model was trained on
    quality: dict[str, float]  # eval accuracy or eval loss, after the same examples
    peak_mib: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    padding: float | None = None  # share of the token positions computed in training that were padding

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.real_tokens / self.seconds


def peak_memory_mib() -> float:
    """Peak GPU memory when training ran on a GPU, else the process's peak RSS."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(stats: Stats) -> None:
    """The child's last line: its Stats as JSON, for the parent to read."""
    stats.peak_mib = peak_memory_mib()
    print(json.dumps(asdict(stats)), flush=True)


# The shared virtualenv's editable install points at whichever checkout last sourced scripts/env.sh;
# a benchmark must measure the checkout it runs from, so its source roots go first on the path.
CHECKOUT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [str(CHECKOUT / root) for root in ("api", "operator", "trainer")]


def pin_checkout() -> dict[str, str]:
    """Import this checkout's packages here and in every child; returns the children's environment."""
    sys.path[:0] = [root for root in SOURCE_ROOTS if root not in sys.path]
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*SOURCE_ROOTS, *([inherited] if inherited else [])])}


def run_variant(suite: str, variant: str, argv: list[str]) -> Stats:
    out = subprocess.run(  # noqa: S603 - our own module, fixed argv
        [sys.executable, "-m", "benchmarks.trainer", "--variant", f"{suite}:{variant}", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=pin_checkout(),
        cwd=CHECKOUT,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"variant {suite}:{variant} failed with exit code {out.returncode}")
    return Stats(**json.loads(out.stdout.strip().splitlines()[-1]))


def padding_text(padding: float | None) -> str:
    return "padding n/a" if padding is None else f"{padding:.1%} padding"


def describe(variant: str, label: str, stats: Stats) -> str:
    quality = ", ".join(f"{k} {v:.4f}" for k, v in stats.quality.items())
    return (
        f"  ({variant}) {label}: {stats.samples_per_s:.2f} samples/s, {padding_text(stats.padding)}, "
        f"{stats.tokens_per_s:.0f} non-pad tokens/s, "
        f"peak memory {stats.peak_mib:.0f} MiB, {quality} ({stats.seconds:.1f} s for {stats.samples} samples)"
    )
