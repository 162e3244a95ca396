"""The test suite's setup stage: every heavy cache built once, each as a named, timed, visible step.

    source scripts/env.sh && python -m tests.setup      (`make test` runs it before pytest)

A step first asks, from disk alone and in well under a second, what of its cache is missing. If
nothing is, it prints one line saying so. Otherwise it says what it builds and why, builds it with
its progress shown (at least a line every 30 s), and prints its time. The stage ends with a table:
each step, built or cached, seconds. Under pytest nothing is built (tests/support/caches.py): a
fixture whose cache is missing fails at once, naming this command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.controlplane.cluster import build, built
from tests.node import docker_engine, kubelet, kueue
from tests.node.docker_engine import DockerEngine, build_all, ensure_base_image
from tests.node.kubelet import RealNode, ensure_pause_image, missing_imports, missing_node_images, node_images
from tests.prometheus import prometheus_binary
from tests.support import assets, caches, visible

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    name: str
    builds: str  # what it makes, for the line that says why it runs
    missing: Callable[[], list[str]]  # what is not cached; from disk, no daemons, fast
    build: Callable[[], None]


@dataclass(frozen=True)
class Outcome:
    step: str
    state: str  # "built", "cached", "skipped" or "FAILED"
    seconds: float
    detail: str = ""


def _is_root() -> bool:
    return os.geteuid() == 0


# --- system packages -------------------------------------------------------------------------------


def _missing_packages() -> list[str]:
    return docker_engine.missing_tools() + kubelet.missing_tools()


def _install_packages() -> None:
    with visible.current(caches.PACKAGES_STEP) as progress:
        progress.run(["bash", str(REPO / "tests" / "node" / "install.sh")], show=lambda line: True)


# --- virtualenv: made by scripts/env.sh before this runs (this very interpreter lives in it) -------


def _virtualenv_outcome() -> Outcome:
    venv = os.environ.get("VIRTUAL_ENV", "")
    built = os.environ.get("FINETUNE_ENV_BUILT_S")
    if built:
        return Outcome(caches.VIRTUALENV_STEP, "built", float(built), venv)
    return Outcome(caches.VIRTUALENV_STEP, "cached", float(os.environ.get("FINETUNE_ENV_S", "0")), venv)


# --- Go binaries ------------------------------------------------------------------------------------


def _missing_go() -> list[str]:
    folder, absent = built()
    return [] if folder is not None else [absent]


def _build_go() -> None:
    build()


# --- images and the node's containerd ---------------------------------------------------------------


@contextmanager
def _docker() -> Iterator[DockerEngine]:
    engine = DockerEngine().start()
    try:
        yield engine
    finally:
        engine.stop()


def _build_images() -> None:
    with _docker() as engine:
        with visible.current(caches.IMAGES_STEP) as progress:
            for name, image in build_all(engine).items():
                how = f"built in {image.seconds:.0f} s" if image.seconds else "unchanged"
                progress.say(f"{name} image {image.ref}: {image.size_bytes / 1e9:.2f} GB, {how}")
        ensure_pause_image(engine, ensure_base_image(engine))
        kueue.ensure_image(engine)


def _missing_imports() -> list[str]:
    return missing_imports(node_images())


def _import_images() -> None:
    with _docker() as engine:
        node = RealNode(None, build()).start_containerd()
        try:
            for ref in node_images():
                node.import_image(engine, ref)
        finally:
            node.stop()


# --- models and data, Prometheus ---------------------------------------------------------------------


def _missing_assets() -> list[str]:
    absent = []
    with caches.only_caches():
        for name, prepare in assets.everything().items():
            try:
                prepare()
            except caches.MissingCache:
                absent.append(name)
    return absent


def _build_assets() -> None:
    with visible.current(caches.ASSETS_STEP) as progress:
        for name, prepare in assets.everything().items():
            started = time.monotonic()
            progress.note(f"preparing {name}")
            path = prepare()
            progress.say(f"{name}: {path} ({time.monotonic() - started:.0f} s)")


def _missing_prometheus() -> list[str]:
    with caches.only_caches():
        try:
            prometheus_binary()
        except caches.MissingCache:
            return ["prometheus"]
    return []


def _build_prometheus() -> None:
    prometheus_binary()


def steps() -> list[Step]:
    node = [
        Step(caches.IMAGES_STEP, "the Debian base (debootstrap), both images, the pause and Kueue images",
             missing_node_images,
             _build_images),
        Step(caches.CONTAINERD_STEP, "the images in the node's containerd (docker save | ctr import)",
             _missing_imports, _import_images),
    ]  # fmt: skip
    return [
        Step(caches.PACKAGES_STEP, "Debian's docker.io, containerd, runc, CNI plugins, debootstrap",
             _missing_packages, _install_packages),
        Step(caches.GO_STEP, "etcd, kube-apiserver, controller-manager, scheduler, kubelet, kwok, helm, Kueue (Go)",
             _missing_go, _build_go),
        *(node if _is_root() else []),
        Step(caches.ASSETS_STEP, "the shipped models and data sets from the package registries", _missing_assets,
             _build_assets),
        Step(caches.PROMETHEUS_STEP, "Debian's prometheus, unpacked", _missing_prometheus, _build_prometheus),
    ]  # fmt: skip


def run_step(step: Step) -> Outcome:
    started = time.monotonic()
    absent = step.missing()
    if not absent:
        seconds = time.monotonic() - started
        print(f"==> {step.name}: cached ({seconds:.2f} s)", flush=True)
        return Outcome(step.name, "cached", seconds)
    print(f"==> {step.name}: building {step.builds}; missing: {'; '.join(absent)}", flush=True)
    with visible.step(step.name):
        step.build()
    left = step.missing()
    seconds = time.monotonic() - started
    if left:
        raise RuntimeError(f"{step.name}: still missing after its build: {'; '.join(left)}")
    print(f"==> {step.name}: built in {seconds:.0f} s", flush=True)
    return Outcome(step.name, "built", seconds)


def table(outcomes: list[Outcome]) -> str:
    width = max(len(o.step) for o in outcomes)
    rows = [f"{'step':<{width}}  {'state':<7}  {'seconds':>8}", f"{'-' * width}  {'-' * 7}  {'-' * 8}"]
    rows += [f"{o.step:<{width}}  {o.state:<7}  {o.seconds:>8.1f}" for o in outcomes]
    total = sum(o.seconds for o in outcomes)
    rows.append(f"{'total':<{width}}  {'':<7}  {total:>8.1f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.setup", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what is missing; build nothing")
    args = parser.parse_args(argv)
    if not os.environ.get("VIRTUAL_ENV"):
        print("tests.setup: run `source scripts/env.sh` first (it makes the virtualenv this runs in)", file=sys.stderr)
        return 2
    venv = _virtualenv_outcome()
    print(f"==> {venv.step}: {venv.state} ({venv.seconds:.1f} s) {venv.detail}", flush=True)
    outcomes = [venv]
    if not _is_root():
        print("==> the node tier's steps are skipped: it needs root (its tests skip too)", flush=True)
    for step in steps():
        if args.check:
            absent = step.missing()
            print(f"==> {step.name}: {'missing: ' + '; '.join(absent) if absent else 'cached'}", flush=True)
            outcomes.append(Outcome(step.name, "missing" if absent else "cached", 0.0))
            continue
        try:
            outcomes.append(run_step(step))
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            outcomes.append(Outcome(step.name, "FAILED", 0.0))
            print(f"\n{table(outcomes)}\n\n==> {step.name} failed: {exc}", file=sys.stderr, flush=True)
            return 1
    print(f"\n{table(outcomes)}", flush=True)
    return 1 if args.check and any(o.state == "missing" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
