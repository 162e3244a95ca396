"""Classification accuracy and macro-F1; causal-LM eval loss and perplexity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def argmax_logits(logits: Any, labels: Any) -> torch.Tensor:
    """Keep only the predicted class during evaluation, not every logit."""
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted: torch.Tensor = logits.argmax(dim=-1)
    return predicted


def classification_metrics(prediction: Any) -> dict[str, float]:
    preds = np.asarray(prediction.predictions).reshape(-1)
    labels = np.asarray(prediction.label_ids).reshape(-1)
    accuracy = float((preds == labels).mean()) if len(labels) else 0.0
    f1s = []
    for cls in np.unique(np.concatenate([labels, preds])):
        tp = float(((preds == cls) & (labels == cls)).sum())
        fp = float(((preds == cls) & (labels != cls)).sum())
        fn = float(((preds != cls) & (labels == cls)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": accuracy, "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def add_perplexity(metrics: dict[str, float]) -> dict[str, float]:
    if "eval_loss" in metrics:
        metrics["eval_perplexity"] = math.exp(min(metrics["eval_loss"], 50.0))
    return metrics
