"""The tests' S3: moto speaking the real S3 protocol on 127.0.0.1, its throwaway credentials, and the shipped
model and data where the examples name them (s3://models/all-minilm-l6-v2/, s3://data/tweets/)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Dummy keys for a throwaway server; processes find them through boto3's normal chain (the environment).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
BUCKETS = ("models", "data")


def default_credentials() -> None:
    """The throwaway keys in this process's environment (where none are set), for boto3 here and in children."""
    for key, value in {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(key, value)


def upload_shipped(endpoint: str) -> None:
    """The shipped MiniLM and tweets, uploaded to the buckets the examples name (made here)."""
    import boto3

    from finetune_api.v1alpha1.storage import S3Spec
    from finetune_trainer.storage import open_store
    from tests.support import assets

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    spec = S3Spec(endpoint=endpoint)
    open_store("s3://models/all-minilm-l6-v2/", spec).upload_all(assets.minilm())
    tweets = assets.tweets()
    for name in ("train.csv", "eval.csv"):
        open_store("s3://data/tweets/", spec).upload(tweets / name, name)


def start_server_process(port: int, log: Path, timeout: float = 60) -> subprocess.Popen[bytes]:
    """moto as a process of its own session, for a cluster that outlives the command that started it (the tests'
    fixture runs it in a thread instead); returns once it answers on http://127.0.0.1:<port>."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return proc
        except urllib.error.HTTPError:
            return proc  # it answered
        except OSError:
            time.sleep(0.3)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the S3 server (moto) did not answer on 127.0.0.1:{port} in {timeout:.0f} s:\n"
                       f"{log.read_text(errors='replace')[-2000:]}")  # fmt: skip
