"""The tests' MLflow: `mlflow server` from PyPI (the project's dev environment puts it on PATH), with a sqlite
backend and a local artifact root, on 127.0.0.1. Artifacts go through the server (--serve-artifacts), as a
trainer pod would send them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.controlplane.cluster import free_port

START_SECONDS = 120


@contextmanager
def mlflow_server(folder: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """A running tracking server; yields its URL."""
    binary = shutil.which("mlflow")
    if binary is None:
        raise RuntimeError("mlflow is not on PATH: source scripts/env.sh (the dev extra installs the server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        binary, "server", "--host", host, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts",
    ]  # fmt: skip
    log = folder / "server.log"
    proc = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server: no answer at {url}/health within {START_SECONDS} s:\n{log.read_text()[-3000:]}")
