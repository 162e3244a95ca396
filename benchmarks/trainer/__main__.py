"""Trainer throughput, side by side in one run: the tutorial recipe (a), a tuned plain HF Trainer (b)
and this trainer (c), each variant in its own process, interleaved a b c a b c ... over --repeats rounds.

    python -m benchmarks.trainer --quick          # CPU: tweets classification, then SmolLM2 LoRA SFT
    python -m benchmarks.trainer --gpu            # GPU: ~0.5B and ~1B Llama, LoRA and full, bf16
    benchmarks/trainer/gpu_suite.sh               # GPU: the ~1B run sized for a 15-minute device lease

The last line printed is a JSON object with the ratios (c_over_a, c_over_b: medians over the rounds)
and the qualities, and beside them their [min, max] spreads and each variant's padding fraction.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import SEED, Stats, describe, emit, padding_text, pin_checkout, run_variant
from .repeats import QualityVerdict, Repeats, interleave, quality_verdict, ratio_summary

# Steps per variant and eval rows, per suite. (b) and (c) run enough steps that the first step's
# warm-up is a few percent of the loop; (a) computes ~15x the tokens per step, so a few of its steps
# already dwarf any warm-up (and its accuracy after fewer steps is not compared with anything).
# The tutorial recipe (a) runs on tweets and SFT only: its 512-token rows take minutes per step and
# its ratio is not in question. The other corpora compare (b) and (c), quality beside speed.
SIZES = {
    "quick": {
        "tweets": ({"a": 4, "b": 30, "c": 30}, 300),
        "polarity": ({"b": 30, "c": 30}, 300),
        "reviews-nl": ({"b": 30, "c": 30}, 300),
        "tilted": ({"b": 30, "c": 30}, 300),
        "sft": ({"a": 3, "b": 6, "c": 6}, 24),
    },
    "full": {
        "tweets": ({"a": 20, "b": 120, "c": 120}, 1000),
        "polarity": ({"b": 90, "c": 90}, 600),
        "reviews-nl": ({"b": 60, "c": 60}, 500),
        "tilted": ({"b": 30, "c": 30}, 500),  # its training split holds ~1,190 rows
        "sft": ({"a": 10, "b": 30, "c": 30}, 64),
    },
}
SUITES = ("tweets", "polarity", "reviews-nl", "tilted", "sft")
REPEATS = 3
LABELS = {
    "a": "tutorial recipe (pad to max_length, plain Trainer)",
    "b": "tuned plain Trainer (dynamic padding)",
    "c": "this trainer",
}


def _child(variant: str, args: argparse.Namespace) -> None:
    """One variant, in this process; prints its Stats as the last line."""
    from . import classification, gpu, sft

    suite, which = variant.split(":", 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if suite in classification.DATASETS:
            stats = (
                classification.ours(suite, args.steps, args.eval_rows, work, args.seed)
                if which == "c"
                else classification.plain(suite, which, args.steps, args.eval_rows, args.seed)
            )
        elif suite == "sft":
            stats = (
                sft.ours(args.steps, args.eval_rows, work, args.seed)
                if which == "c"
                else sft.plain(which, args.steps, args.eval_rows, work, args.seed)
            )
        else:  # gpu:<shape>:<method>:<b|c>
            shape, method, kind = which.split(":")
            run = gpu.ours if kind == "c" else gpu.plain
            stats = run(shape, method, args.steps, args.batch, work)
    emit(stats)


def _cpu_suite(suite: str, steps: dict[str, int], eval_rows: int, repeats: int) -> Repeats:
    print(f"{suite}: {repeats} interleaved rounds, steps per variant {steps}, {eval_rows} eval rows", flush=True)

    def one(variant: str, round_: int) -> Stats:
        # Every round its own seed, the same for all variants: the spread over rounds is the seed spread.
        argv = ["--steps", str(steps[variant]), "--eval-rows", str(eval_rows), "--seed", str(SEED + round_)]
        stats = run_variant(suite, variant, argv)
        print(f"  round {round_ + 1}: " + describe(variant, LABELS[variant], stats).lstrip(), flush=True)
        return stats

    return interleave(tuple(steps), repeats, one)


def _figures(rep: Repeats) -> dict[str, Any]:
    """The JSON line's figures for one suite: medians, and [min, max] over the rounds beside them."""
    c_over_a, c_over_a_spread = ratio_summary(rep.ratios("c", "a")) if "a" in rep.runs else (None, None)
    c_over_b, c_over_b_spread = ratio_summary(rep.ratios("c", "b"))
    variants = list(rep.runs)
    verdict = _verdict(rep)
    metric = verdict.metric
    quality = {
        f"{k}_{v}": round(statistics.median(s.quality[k] for s in rep.runs[v]), 4)
        for v in variants
        for k in rep.runs["c"][0].quality
    }
    return {
        "c_over_a": c_over_a,
        "c_over_b": c_over_b,
        **quality,
        "samples_per_s": {v: round(rep.median(v, lambda s: s.samples_per_s), 2) for v in variants},
        "tokens_per_s": {v: round(rep.median(v, lambda s: s.tokens_per_s)) for v in variants},
        "peak_mib": {v: round(rep.median(v, lambda s: s.peak_mib)) for v in variants},
        "c_over_a_spread": c_over_a_spread,
        "c_over_b_spread": c_over_b_spread,
        "samples_per_s_spread": {v: [round(x, 2) for x in rep.spread(v, lambda s: s.samples_per_s)] for v in variants},
        "padding_fraction": {v: _round(rep.padding(v)) for v in variants},
        "quality_spread": {v: [round(x, 4) for x in rep.spread(v, lambda s: s.quality[metric])] for v in variants},
        "quality_c_vs_b": {"metric": metric, "worse_by": verdict.worse_by, "allowed": verdict.allowed,
                           "verdict": "REGRESSION" if verdict.regression else "ok"},
        "repeats": len(rep.runs["c"]),
    }  # fmt: skip


def _verdict(rep: Repeats) -> QualityVerdict:
    """(c)'s quality against (b)'s, over the rounds' seeds."""
    (metric,) = rep.runs["c"][0].quality
    return quality_verdict(metric, *([s.quality[metric] for s in rep.runs[v]] for v in ("b", "c")))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _print_summary(suite: str, rep: Repeats, figures: dict[str, Any]) -> None:
    print(f"{suite}: medians over {figures['repeats']} rounds [min, max]", flush=True)
    for v in rep.runs:
        low, high = figures["samples_per_s_spread"][v]
        print(
            f"  ({v}) {figures['samples_per_s'][v]:.2f} samples/s [{low:.2f}, {high:.2f}], "
            f"{padding_text(rep.padding(v))}",
            flush=True,
        )
    for key in ("c_over_a", "c_over_b"):
        if figures[key] is not None:
            print(f"  {key.replace('_over_', '/')} = {figures[key]}x {figures[key + '_spread']}", flush=True)
    print("  " + _verdict(rep).text("b", "c"), flush=True)


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
                "padding_b": _round(by["b"].padding),
                "padding_c": _round(by["c"].padding),
                "device": by["c"].extra.get("device"),
            }
    if out:
        gpu.record(results, out)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trainer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps: est. 25-30 min on 2 quiet cores")
    parser.add_argument("--suite", nargs="+", choices=SUITES, default=list(SUITES))
    parser.add_argument("--gpu", action="store_true", help="the GPU suite instead (needs CUDA)")
    parser.add_argument("--gpu-shapes", nargs="+", default=["0.5b", "1b"], help="model shapes for --gpu")
    parser.add_argument("--gpu-out", type=Path, help="write the GPU figures here as JSON")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--eval-rows", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16, help="examples per step for --gpu")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="interleaved rounds of (a) (b) (c)")
    parser.add_argument("--sizes", type=json.loads, help="override SIZES[size] (JSON), e.g. to check the harness")
    args = parser.parse_args()
    pin_checkout()
    if args.variant:
        _child(args.variant, args)
        return 0
    if args.gpu:
        print(json.dumps(_gpu(args.gpu_shapes, args.steps, args.batch, args.gpu_out)))
        return 0
    size = "quick" if args.quick else "full"
    summary: dict[str, Any] = {"size": "custom" if args.sizes else size}
    sizes = args.sizes or SIZES[size]  # JSON gives [steps, eval rows] where SIZES has a tuple
    for suite in args.suite:
        steps, eval_rows = sizes[suite]
        rep = _cpu_suite(suite, steps, eval_rows, args.repeats)
        figures = _figures(rep)
        _print_summary(suite, rep, figures)
        if suite == "tweets":
            summary.update(figures)  # the headline ratios: the c_over_a, c_over_b, accuracy_*
        else:
            summary[suite] = figures
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
