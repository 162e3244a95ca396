"""`finetune demo`: the README example run for real, on CPU, against an S3 server on 127.0.0.1.

The shipped MiniLM and tweets are uploaded to the buckets the example names (s3://models,
s3://data); the job runs exactly as in a pod (S3 in, S3 out, manifest last); the output is then
copied to ./runs/<name>/ to look at.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .artifacts import publish
from .artifacts.manifest import MANIFEST
from .cli import print_summary, with_overrides
from .job_file import load_job
from .main import RunOptions, execute
from .storage import open_store


def run_demo(example: Path, runs: Path, max_samples: int | None) -> int:
    import boto3
    from moto.server import ThreadedMotoServer

    from . import assets

    model_dir, tweets_dir = assets.minilm(), assets.tweets()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # A throwaway local server: these are its dummy credentials, not secrets.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for bucket in ("models", "data"):
            s3.create_bucket(Bucket=bucket)
        job = with_overrides(load_job(example), None, endpoint)
        if max_samples:
            ds = job.spec.dataset.model_copy(update={"max_samples": max_samples})
            job = job.model_copy(update={"spec": job.spec.model_copy(update={"dataset": ds})})
        open_store(job.spec.model.uri, job.spec.s3).upload_all(model_dir)
        for name in ("train.csv", "eval.csv"):
            open_store("s3://data/tweets/", job.spec.s3).upload(tweets_dir / name, name)
        print(f"==> running {example} against S3 at {endpoint}")
        code, result = execute(
            job, RunOptions(work_dir=runs / ".work" / job.metadata.name, progress_bar=True, termination_log=os.devnull)
        )
        local = runs / job.metadata.name
        out_store = open_store(job.spec.output.uri, job.spec.s3)
        manifest = publish.read_manifest(out_store)
        if manifest:
            out_store.download_all(local, keys=[f["path"] for f in manifest["files"]] + [MANIFEST])
        if result:
            print_summary(result)
        print(f"==> artifacts in {local}/ (model card README.md, loss_curve.png, metrics.json, manifest.json)")
        return code
    finally:
        server.stop()
        sys.stdout.flush()
