"""The report step publishes comparison.md/.png/.json with a manifest and promotes the best variant, manifest last."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from finetune_api.pod_contract import MANIFEST
from finetune_trainer.artifacts.manifest import build_manifest, verify
from finetune_trainer.experiment.step import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tweets-comparison.yaml"
ACCURACY = {"full": 0.70, "layerwise-lr": 0.69, "lora": 0.72, "prompt-tuning": 0.55}


def _publish_variant(out: Path, name: str) -> None:
    folder = out / name
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(name.encode() * 100)
    (folder / "metrics.json").write_text(json.dumps({"accuracy": ACCURACY[name]}))
    manifest = build_manifest(folder, {"job": {"name": f"tweets-comparison-{name}"}})
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_step_writes_the_report_and_promotes_the_best(tmp_path: Path) -> None:
    out, serving = tmp_path / "out", tmp_path / "serving"
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["template"]["output"]["uri"] = f"{out}/"
    doc["spec"]["promote"]["uri"] = f"{serving}/"
    rows = []
    for name, accuracy in ACCURACY.items():
        _publish_variant(out, name)
        rows.append(
            {
                "name": name,
                "job": f"tweets-comparison-{name}",
                "phase": "Succeeded",
                "method": name,
                "metric": accuracy,
                "baseline": 0.41,
                "trainableParameters": 148_611 if name == "lora" else 22_714_371,
                "trainSeconds": 10.0,
            }
        )
    # The operator's idea of the best is not trusted: the step recomputes it from the rows.
    comparison = {"metric": "accuracy", "best": {"variant": "full"}, "variants": rows}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "comparison.json").write_text(json.dumps(comparison))

    code = main([f"--experiment={tmp_path / 'experiment.yaml'}", f"--comparison={tmp_path / 'comparison.json'}"])

    assert code == 0
    report = out / "comparison"
    manifest = json.loads((report / MANIFEST).read_text())
    assert sorted(f["path"] for f in manifest["files"]) == ["comparison.json", "comparison.md", "comparison.png"]
    assert verify(report, manifest) == [] and manifest["best"] == "lora"
    text = (report / "comparison.md").read_text()
    assert "| lora * | lora | Succeeded | 0.7200 | 0.4100 | 148.6k |" in text and "**Best: lora**" in text
    assert (report / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    promoted = json.loads((serving / MANIFEST).read_text())
    assert promoted["promotedFrom"]["variant"] == "lora" and verify(serving, promoted) == []
    assert (serving / "adapter" / "adapter_model.safetensors").read_bytes() == b"lora" * 100


def test_step_fails_as_a_storage_error_when_the_best_output_is_incomplete(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["template"]["output"]["uri"] = f"{tmp_path / 'out'}/"
    doc["spec"]["promote"]["uri"] = f"{tmp_path / 'serving'}/"
    rows = [{"name": "lora", "job": "tweets-comparison-lora", "phase": "Succeeded", "metric": 0.7}]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "comparison.json").write_text(json.dumps({"metric": "accuracy", "variants": rows}))
    code = main([f"--experiment={tmp_path / 'experiment.yaml'}", f"--comparison={tmp_path / 'comparison.json'}"])
    assert code == 12, "no manifest at the variant's output: nothing is promoted (StorageError)"
    assert not (tmp_path / "serving" / MANIFEST).exists()
