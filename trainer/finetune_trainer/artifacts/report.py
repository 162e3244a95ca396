"""The model card (README.md with the baseline-vs-tuned table) and the loss-curve picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_curve(points: list[dict[str, float]], path: Path, title: str) -> None:
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


def model_card(
    job: str, spec_yaml: str, metrics: dict[str, Any], hygiene: list[str], params: dict[str, int], base_model: str
) -> str:
    baseline, tuned = metrics.get("baseline", {}), metrics.get("tuned", {})
    keys = [
        k for k in ("eval_accuracy", "eval_macro_f1", "eval_loss", "eval_perplexity") if k in tuned or k in baseline
    ]
    rows = "\n".join(f"| {k.removeprefix('eval_')} | {_fmt(baseline.get(k))} | {_fmt(tuned.get(k))} |" for k in keys)
    gate = metrics.get("gate")
    trainable, total = params.get("trainable", 0), params.get("total", 0)
    gate_line = f"\n**Gate:** {gate['explanation']}\n" if gate else ""
    return f"""# {job}

Fine-tuned from `{base_model}` by finetune-operator.

## Evaluation (same eval set, before and after)

| metric | baseline (untouched) | tuned |
|---|---|---|
{rows}
{gate_line}
![loss curve](loss_curve.png)

## Training

- trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)
- steps: {metrics.get("steps")}, train runtime: {_fmt(metrics.get("train_runtime_s"))} s

## Data hygiene

{chr(10).join("- " + line for line in hygiene)}

## Spec

```yaml
{spec_yaml.strip()}
```
"""
