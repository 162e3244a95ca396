"""A real Prometheus server for the tests: Debian's package, unpacked once into the cache, run on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.controlplane.cluster import free_port
from tests.support.caches import PROMETHEUS_STEP, cache_dir, caches_only, missing


def prometheus_binary() -> Path:
    """Debian's prometheus, unpacked once into the cache (it links only libc)."""
    cache = cache_dir() / "prometheus"
    binary = cache / "usr" / "bin" / "prometheus"
    if binary.exists():
        return binary
    if caches_only():
        raise missing("Debian's prometheus", PROMETHEUS_STEP)
    with tempfile.TemporaryDirectory() as tmp:
        get = ["apt-get", "download", "prometheus"]
        if subprocess.run(get, cwd=tmp, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
            subprocess.run(get, cwd=tmp, capture_output=True, check=True)
        deb = next(Path(tmp).glob("prometheus_*.deb"))
        staging = cache.with_suffix(".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(cache, ignore_errors=True)
        staging.rename(cache)
    return binary


@contextmanager
def run_prometheus(targets: dict[str, int], folder: Path, interval: str = "1s") -> Iterator[str]:
    """Prometheus scraping 127.0.0.1:<port> for each named job; yields its URL."""
    web_port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {interval}}}\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {name}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            for name, port in targets.items()
        )
    )
    proc = subprocess.Popen(
        [str(prometheus_binary()), f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{web_port}"
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=5).read()
    data = json.loads(body)
    if data["status"] != "success":
        raise RuntimeError(f"Prometheus query {expr!r} failed: {data}")
    return list(data["data"]["result"])
