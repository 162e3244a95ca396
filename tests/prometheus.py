"""A real Prometheus server for the tests: Debian's package, unpacked once into the cache, run on 127.0.0.1, or
inside a network namespace of the cluster network (reached from the host through a forwarder)."""

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
def run_prometheus(
    targets: dict[str, int],
    folder: Path,
    interval: str = "1s",
    scrape_configs: list[dict[str, Any]] | None = None,
    netns: str | None = None,
) -> Iterator[str]:
    """Prometheus scraping 127.0.0.1:<port> for each named job in `targets`, and `scrape_configs` as given; yields
    its URL on the host's 127.0.0.1. With `netns` it runs inside that namespace of the cluster network, where
    service discovery finds pods and Services at their cluster addresses."""
    web_port = free_port()
    config = folder / "prometheus.yml"
    static = [
        {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]} for name, port in targets.items()
    ]
    config.write_text(
        json.dumps({"global": {"scrape_interval": interval}, "scrape_configs": static + list(scrape_configs or [])})
    )
    prefix: list[str] = []
    reach: list[subprocess.Popen[str]] = []
    url = f"http://127.0.0.1:{web_port}"
    if netns is not None:
        from tests.node import forwarder, network  # the node tier's; only a namespaced Prometheus needs them

        prefix = network.in_netns(netns)
        host_port = free_port()
        reach.append(
            forwarder.start([(f"127.0.0.1:{host_port}", f"{netns}/127.0.0.1:{web_port}")], log=folder / "forwarder.log")
        )
        url = f"http://127.0.0.1:{host_port}"
    proc = subprocess.Popen(
        [*prefix, str(prometheus_binary()), f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=(folder / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
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
        for forwarding in reach:
            forwarding.terminate()
            forwarding.wait(timeout=20)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=5).read()
    data = json.loads(body)
    if data["status"] != "success":
        raise RuntimeError(f"Prometheus query {expr!r} failed: {data}")
    return list(data["data"]["result"])
