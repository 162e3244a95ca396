"""`make demo` (`python -m tests.support.demo`): the README example run for real, on CPU, against an S3
server on 127.0.0.1.

The shipped MiniLM and tweets are uploaded to the buckets the example names (s3://models,
s3://data); the job runs exactly as in a pod (S3 in, S3 out, manifest last); the output is then
copied to ./runs/<name>/ to look at.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from finetune_api.pod_contract import MANIFEST
from finetune_api.v1alpha1.job import FineTuneJobSpec
from finetune_trainer.artifacts import publish
from finetune_trainer.cli import print_summary
from finetune_trainer.job_file import is_experiment_file, load_job
from finetune_trainer.main import RunOptions, configure_logging, execute
from finetune_trainer.overrides import spec_with_overrides, with_overrides
from finetune_trainer.storage import open_store

from . import assets


def _upload_assets(spec: FineTuneJobSpec, model_dir: Path, tweets_dir: Path) -> None:
    open_store(spec.model.uri, spec.s3).upload_all(model_dir)
    for name in ("train.csv", "eval.csv"):
        open_store("s3://data/tweets/", spec.s3).upload(tweets_dir / name, name)


def _fetch_published(uri: str, spec: FineTuneJobSpec, local: Path) -> None:
    store = open_store(uri, spec.s3)
    manifest = publish.read_manifest(store)
    if manifest:
        store.download_all(local, keys=[f["path"] for f in manifest["files"]] + [MANIFEST])


def run_demo(example: Path, runs: Path, max_samples: int | None, max_eval_samples: int | None = None) -> int:
    import boto3
    from moto.server import ThreadedMotoServer

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
        print(f"==> running {example} against S3 at {endpoint}")
        if is_experiment_file(example):
            from finetune_api.experiment.expand import report_uri
            from finetune_trainer.experiment.cli import prepared, run_prepared

            experiment, variants = prepared(
                example, None, endpoint, max_samples=max_samples, max_eval_samples=max_eval_samples
            )
            _upload_assets(experiment.spec.template, model_dir, tweets_dir)
            outcome = run_prepared(experiment, variants, runs / ".work" / experiment.metadata.name, progress_bar=True)
            local = runs / experiment.metadata.name
            _fetch_published(report_uri(experiment), experiment.spec.template, local / "comparison")
            print(f"==> report in {local}/comparison/ (comparison.md, comparison.png, manifest.json)")
            return outcome.exit_code
        job = with_overrides(load_job(example), None, endpoint)
        job = job.model_copy(update={"spec": spec_with_overrides(job.spec, None, None, max_samples)})
        _upload_assets(job.spec, model_dir, tweets_dir)
        code, result = execute(
            job, RunOptions(work_dir=runs / ".work" / job.metadata.name, progress_bar=True, termination_log=os.devnull)
        )
        local = runs / job.metadata.name
        _fetch_published(job.spec.output.uri, job.spec, local)
        if result:
            print_summary(result)
        print(f"==> artifacts in {local}/ (model card README.md, loss_curve.png, metrics.json, manifest.json)")
        return code
    finally:
        server.stop()
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="examples/tweets-lora.yaml", help="the FineTuneJob or experiment to run")
    parser.add_argument("--runs", default="runs", help="where the output is copied")
    parser.add_argument("--max-samples", type=int, default=None, help="train on at most this many rows")
    parser.add_argument("--max-eval-samples", type=int, default=None, help="evaluate on at most this many rows")
    args = parser.parse_args(argv)
    configure_logging()
    print("==> preparing the shipped model and data (once, cached in", assets.cache_root(), ")")
    return run_demo(Path(args.file), Path(args.runs), args.max_samples, args.max_eval_samples)


if __name__ == "__main__":
    raise SystemExit(main())
