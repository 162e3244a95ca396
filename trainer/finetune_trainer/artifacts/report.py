"""The model card (README.md with the baseline-vs-tuned table) and the loss-curve picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_api.measurements import EVAL_KEYS, FewShot, Forgetting, RunMeasurements


def loss_curve(
    points: list[dict[str, float]], path: Path, title: str, levels: dict[str, float | None] | None = None
) -> None:
    """Train and eval loss over steps; `levels` (zero-shot, few-shot eval loss) as horizontal reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(p["step"], p["train_loss"]) for p in points if "train_loss" in p]
    evals = [(p["step"], p["eval_loss"]) for p in points if "eval_loss" in p]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", color="#1f77b4")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o--", label="eval loss", color="#d62728")
    for (name, level), style in zip((levels or {}).items(), (":", "-."), strict=False):
        if level is not None:
            ax.axhline(level, linestyle=style, color="#7f7f7f", linewidth=1, label=f"{name} eval loss (untouched)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def model_card(job: str, spec_yaml: str, m: RunMeasurements, base_model: str, serving: str = "") -> str:
    baseline, tuned, few = m.baseline, m.tuned, m.few_shot
    keys = [k for k in EVAL_KEYS if k in tuned or k in baseline]
    few_col = f" few-shot ({few.shots} shots) |" if few else ""
    rows = "\n".join(
        f"| {k.removeprefix('eval_')} | {_fmt(baseline.get(k))} |"
        + (f" {_fmt(few.scores.get(k, 'n/a'))} |" if few else "")
        + f" {_fmt(tuned.get(k))} |"
        for k in keys
    )
    header = f"| metric | baseline (untouched) |{few_col} tuned |\n|---|---|{'---|' if few else ''}---|"
    trainable, total = m.cost.trainable_parameters or 0, m.cost.total_parameters or 0
    gate_line = f"\n**Gate:** {m.gate.explanation}\n" if m.gate else ""
    return f"""# {job}

Fine-tuned from `{base_model}` by finetune-operator.

## Evaluation (same eval set, before and after)

{header}
{rows}
{_few_shot_note(few)}{_forgetting_section(m.forgetting)}{gate_line}
![loss curve](loss_curve.png)

## Training

- trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)
- steps: {m.steps}, train runtime: {_fmt(m.cost.train_seconds)} s{_queue_line(m)}

{serving}
## Data hygiene

{chr(10).join("- " + line for line in m.hygiene.lines())}

## Spec

```yaml
{spec_yaml.strip()}
```
"""


def _queue_line(m: RunMeasurements) -> str:
    if m.cost.queued_seconds is None:
        return ""
    times = "time" if m.cost.preemptions == 1 else "times"
    return (
        f"\n- shared cluster (Kueue): {m.cost.queued_seconds:.0f} s queued before admission, "
        f"preempted {m.cost.preemptions or 0} {times} (each resumed from its last checkpoint)"
    )


def _few_shot_note(few: FewShot | None) -> str:
    if few is None:
        return ""
    if few.not_applicable:
        return f"\nFew-shot: not applicable: {few.not_applicable}.\n"
    return (
        f"\nFew-shot: the untouched model with {few.shots} training examples in front of each eval prompt "
        f"({few.demonstrations or 0.0:.1f} fitted on average within maxLength; the oldest are dropped first).\n"
    )


def forgetting_line(forgetting: Forgetting) -> str:
    """'before -> after (+x.x%)' of the reference perplexity, for the card and the run summary."""
    change = forgetting.relative_change
    return (
        f"{_fmt(forgetting.before)} -> {_fmt(forgetting.after)}"
        + ("" if change is None else f" ({100 * change:+.1f}%)")
        + f" on {forgetting.tokens} tokens of {forgetting.reference}"
    )


def _forgetting_section(forgetting: Forgetting | None) -> str:
    if forgetting is None:
        return ""
    return f"\n**Forgetting** (reference-text perplexity before -> after training): {forgetting_line(forgetting)}\n"
