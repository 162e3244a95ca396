"""Trainer throughput, side by side in one run: the tutorial recipe (a), a tuned plain HF Trainer (b)
and this trainer (c), each variant in its own process.

    python -m benchmarks.trainer --quick          # CPU: tweets classification, then SmolLM2 LoRA SFT
    python -m benchmarks.trainer --gpu            # GPU: ~0.5B and ~1B Llama, LoRA and full, bf16

The last line printed is a JSON object with the ratios (c_over_a, c_over_b) and the qualities.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import Stats, describe, emit, run_variant

# (steps, eval rows) per suite; quick keeps the whole CPU run near 15 minutes on 2 cores, most of it
# in the tutorial recipe's padded batches.
SIZES = {"quick": {"tweets": (10, 300), "sft": (6, 24)}, "full": {"tweets": (60, 1000), "sft": (30, 64)}}
LABELS = {
    "a": "tutorial recipe (pad to max_length, plain Trainer)",
    "b": "tuned plain Trainer (dynamic padding)",
    "c": "this trainer",
}


def _child(variant: str, args: argparse.Namespace) -> None:
    """One variant, in this process; prints its Stats as the last line."""
    from . import gpu, sft, tweets

    suite, which = variant.split(":", 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if suite == "tweets":
            stats = (
                tweets.ours(args.steps, args.eval_rows, work)
                if which == "c"
                else tweets.plain(which, args.steps, args.eval_rows)
            )
        elif suite == "sft":
            stats = (
                sft.ours(args.steps, args.eval_rows, work)
                if which == "c"
                else sft.plain(which, args.steps, args.eval_rows, work)
            )
        else:  # gpu:<shape>:<method>:<b|c>
            shape, method, kind = which.split(":")
            run = gpu.ours if kind == "c" else gpu.plain
            stats = run(shape, method, args.steps, args.batch, work)
    emit(stats)


def _cpu_suite(suite: str, size: str) -> dict[str, Stats]:
    steps, eval_rows = SIZES[size][suite]
    print(f"{suite}: {steps} steps per variant, {eval_rows} eval rows", flush=True)
    results = {}
    for variant in ("a", "b", "c"):
        results[variant] = run_variant(suite, variant, ["--steps", str(steps), "--eval-rows", str(eval_rows)])
        print(describe(variant, LABELS[variant], results[variant]), flush=True)
    return results


def _ratios(results: dict[str, Stats]) -> dict[str, float]:
    c = results["c"].samples_per_s
    return {"c_over_a": round(c / results["a"].samples_per_s, 2), "c_over_b": round(c / results["b"].samples_per_s, 2)}


def _gpu(shapes: list[str], steps: int, batch: int, out: Path | None) -> dict[str, Any]:
    from . import gpu

    results: dict[str, dict[str, Stats]] = {}
    summary: dict[str, Any] = {}
    for shape in shapes:
        for method in ("lora", "full"):
            key = f"{shape}-{method}"
            print(f"{key}: {steps} steps of {batch} examples", flush=True)
            argv = ["--steps", str(steps), "--batch", str(batch)]
            by = {v: run_variant("gpu", f"{shape}:{method}:{v}", argv) for v in ("b", "c")}
            results[key] = by
            for v, stats in by.items():
                mfu = stats.extra.get("mfu")
                print(describe(v, LABELS[v], stats) + (f", MFU {mfu:.1%}" if mfu else ""), flush=True)
            summary[key] = {
                "c_over_b": round(by["c"].tokens_per_s / by["b"].tokens_per_s, 2),
                "mfu_b": by["b"].extra.get("mfu"),
                "mfu_c": by["c"].extra.get("mfu"),
                "tokens_per_s_c": round(by["c"].tokens_per_s),
                "peak_mib_b": round(by["b"].peak_mib),
                "peak_mib_c": round(by["c"].peak_mib),
                "device": by["c"].extra.get("device"),
            }
    if out:
        gpu.record(results, out)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps: about 15 minutes on 2 CPU cores")
    parser.add_argument("--suite", nargs="+", choices=["tweets", "sft"], default=["tweets", "sft"])
    parser.add_argument("--gpu", action="store_true", help="the GPU suite instead (needs CUDA)")
    parser.add_argument("--gpu-shapes", nargs="+", default=["0.5b", "1b"], help="model shapes for --gpu")
    parser.add_argument("--gpu-out", type=Path, help="write the GPU figures here as JSON")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--eval-rows", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16, help="examples per step for --gpu")
    args = parser.parse_args()
    if args.variant:
        _child(args.variant, args)
        return 0
    if args.gpu:
        print(json.dumps(_gpu(args.gpu_shapes, args.steps, args.batch, args.gpu_out)))
        return 0
    size = "quick" if args.quick else "full"
    summary: dict[str, Any] = {"size": size}
    for suite in args.suite:
        results = _cpu_suite(suite, size)
        quality = {f"{key}_{v}": round(s.quality[key], 4) for v, s in results.items() for key in s.quality}
        figures = {
            **_ratios(results),
            **quality,
            "samples_per_s": {v: round(s.samples_per_s, 2) for v, s in results.items()},
            "tokens_per_s": {v: round(s.tokens_per_s) for v, s in results.items()},
            "peak_mib": {v: round(s.peak_mib) for v, s in results.items()},
        }
        if suite == "tweets":
            summary.update(figures)  # the headline ratios: the c_over_a, c_over_b, accuracy_*
        else:
            summary[suite] = figures
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
