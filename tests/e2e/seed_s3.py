"""Upload the shipped model and tweets to an S3 endpoint, or (--check) verify a published output."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import boto3

from finetune_api.v1alpha1.storage import S3Spec
from finetune_trainer.artifacts.manifest import verify
from finetune_trainer.storage import open_store
from tests.support import assets


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--check", metavar="OUTPUT_URI")
    args = parser.parse_args()
    spec = S3Spec(endpoint=args.endpoint, addressing_style="path")
    if args.check:
        out = open_store(args.check, spec)
        manifest = json.loads(out.read_bytes("manifest.json"))
        with tempfile.TemporaryDirectory() as tmp:
            out.download_all(Path(tmp), keys=[f["path"] for f in manifest["files"]])
            bad = verify(Path(tmp), manifest)
        adapter = any(f["path"] == "adapter/adapter_model.safetensors" for f in manifest["files"])
        print(
            json.dumps(
                {
                    "files": len(manifest["files"]),
                    "corrupt": bad,
                    "adapter": adapter,
                    "metrics": manifest["metrics"]["tuned"],
                }
            )
        )
        return 0 if adapter and not bad else 1
    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
    for bucket in ("models", "data"):
        s3.create_bucket(Bucket=bucket)
    open_store("s3://models/all-minilm-l6-v2/", spec).upload_all(assets.minilm())
    for name in ("train.csv", "eval.csv"):
        open_store("s3://data/tweets/", spec).upload(assets.tweets() / name, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
