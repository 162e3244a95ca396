"""The comparison report of an experiment, and the promotion of its best variant.

Both publish the way a run's output is published (artifacts/publish.py): files staged, copied into
place, manifest.json written last, so a reader never takes a half-written report or model for a
finished one. Run by the local runner after its last variant, and in a cluster by the report step
the operator starts once every variant has finished.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from pathlib import Path

from finetune_api.experiment.compare import human_bytes, human_count, markdown_table
from finetune_api.experiment.expand import expand
from finetune_api.pod_contract import MANIFEST
from finetune_api.v1alpha1.enums import Metric
from finetune_api.v1alpha1.experiment import FineTuneExperiment
from finetune_api.v1alpha1.experiment_status import BestVariant, VariantStatus

from ..artifacts import publish
from ..artifacts.manifest import build_manifest
from ..errors import StorageError
from ..storage import open_store
from ..tracking.experiment_run import track_experiment

log = logging.getLogger(__name__)


def comparison_markdown(
    experiment: FineTuneExperiment, rows: list[VariantStatus], metric: Metric, best: BestVariant | None
) -> str:
    changes = "\n".join(f"- **{r.name}** (`{r.job}`): {r.changes or 'the template as is'}" for r in rows)
    verdict = f"**Best: {best.variant}**: {best.reason}." if best else "**No variant succeeded with a metric.**"
    return f"""# {experiment.metadata.name}: {len(rows)} variants compared on {metric}

Same data, model and evaluation set for every variant (`{experiment.spec.template.model.uri}`,
`{experiment.spec.template.dataset.train}`); `*` marks the best. Cost columns: parameters the method
trained, wall-clock time of the training loop, training tokens per second, peak memory (CUDA memory
allocated on GPUs; on CPU the trainer's resident memory, which for variants run one after another in
one process includes what earlier variants left allocated).

{markdown_table(rows, metric, best)}

{verdict}

![metric and cost per variant](comparison.png)

## Variants

{changes}
"""


def comparison_chart(rows: list[VariantStatus], metric: Metric, best: BestVariant | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in rows]
    colours = ["#2ca02c" if best and r.name == best.variant else "#1f77b4" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), dpi=110)
    panels = (
        (axes[0], [r.metric or 0.0 for r in rows], f"{metric} (tuned; line: untouched model)"),
        (axes[1], [float(r.trainable_parameters or 0) for r in rows], "trainable parameters (log)"),
        (axes[2], [r.train_seconds or 0.0 for r in rows], "training time (s; labels: peak memory)"),
    )
    for ax, values, title in panels:
        ax.bar(names, values, color=colours)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    baselines = [r.baseline for r in rows if r.baseline is not None]
    if baselines:
        axes[0].axhline(baselines[0], color="#d62728", linestyle="--", linewidth=1)
    if any(r.trainable_parameters for r in rows):
        axes[1].set_yscale("log")
    for i, r in enumerate(rows):
        axes[1].annotate(human_count(r.trainable_parameters), (i, r.trainable_parameters or 1), ha="center", fontsize=7)
        axes[2].annotate(human_bytes(r.peak_memory_bytes), (i, r.train_seconds or 0.0), ha="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _publish_folder(uri: str, folder: Path, lineage: dict[str, object], experiment: FineTuneExperiment) -> str:
    store = open_store(uri, experiment.spec.template.s3)
    manifest = build_manifest(folder, lineage)
    staging = publish.stage(store, folder, f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}")
    return publish.promote(store, staging, manifest)


def write_report(
    experiment: FineTuneExperiment,
    rows: list[VariantStatus],
    metric: Metric,
    best: BestVariant | None,
    uri: str,
) -> str:
    """comparison.md, comparison.png and comparison.json under `uri`, manifest last; returns the manifest's URI."""
    with tempfile.TemporaryDirectory(prefix="comparison-") as tmp:
        folder = Path(tmp)
        (folder / "comparison.md").write_text(comparison_markdown(experiment, rows, metric, best))
        comparison_chart(rows, metric, best, folder / "comparison.png")
        table = {
            "metric": str(metric),
            "best": best.model_dump(by_alias=True, mode="json") if best else None,
            "variants": [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in rows],
        }
        (folder / "comparison.json").write_text(json.dumps(table, indent=2))
        track_experiment(experiment, metric, rows, folder)
        lineage: dict[str, object] = {
            "experiment": {"name": experiment.metadata.name, "namespace": experiment.metadata.namespace},
            "variants": {r.name: (r.output.manifest if r.output else None) for r in rows},
            "best": best.variant if best else None,
        }
        return _publish_folder(uri, folder, lineage, experiment)


def promote_best(experiment: FineTuneExperiment, best: VariantStatus, target: str) -> str:
    """Copy the best variant's published files to `target`, its manifest.json last; returns the new manifest URI."""
    # Where the variant publishes is fixed by the experiment; its manifest there says whether it is complete.
    uri = next(v.document["spec"]["output"]["uri"] for v in expand(experiment) if v.name == best.name)
    s3 = experiment.spec.template.s3
    source = open_store(uri, s3)
    manifest = publish.read_manifest(source)
    if manifest is None:
        raise StorageError(f"{uri} has no {MANIFEST}: variant {best.name}'s output is incomplete")
    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        folder = Path(tmp)
        source.download_all(folder, keys=[f["path"] for f in manifest["files"]])
        promoted = {
            **manifest,
            "promotedFrom": {"experiment": experiment.metadata.name, "variant": best.name, "uri": uri},
        }
        store = open_store(target, s3)
        staging = publish.stage(store, folder, f"promote-{uuid.uuid4().hex[:6]}")
        uri = publish.promote(store, staging, promoted)
    log.info("promoted %s (%s) to %s", best.name, uri, target)
    return uri
