"""Both images, built from the project's Dockerfiles, start their real entrypoints as their non-root
users with a read-only root filesystem, and a code change rebuilds without downloading torch again."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.controlplane.cluster import ControlPlane
from tests.support import assets

from .conftest import Images
from .docker_engine import REPO, TRAINER_IMAGE, DockerEngine, docker_build

pytestmark = pytest.mark.node


def _writable(path: Path, uid: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    return path


def test_trainer_image_runs_a_job_on_cpu_from_a_mounted_config(
    docker_engine: DockerEngine, images: Images, tmp_path: Path
) -> None:
    job = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "in-a-container", "namespace": "tests"},
        "spec": {
            "model": {"uri": "/models/minilm/"},
            "task": {"type": "sequence-classification", "textColumn": "text", "labelColumn": "sentiment"},
            "dataset": {"train": "/data/train.csv", "eval": "/data/eval.csv", "maxSamples": 96, "maxEvalSamples": 32},
            "method": {"type": "lora"},
            "training": {"maxSteps": 4, "batchSize": 8, "loggingSteps": 2},
            "output": {"uri": "/out/"},
        },
    }
    config = tmp_path / "config"
    config.mkdir()
    (config / "finetunejob.yaml").write_text(yaml.safe_dump(job))
    out, work = _writable(tmp_path / "out", 1000), _writable(tmp_path / "work", 1000)
    # Copies the container's user may read (the cache under /root is the host user's own).
    model, data = tmp_path / "model", tmp_path / "data"
    shutil.copytree(assets.minilm(), model)
    shutil.copytree(assets.tweets(), data)
    for path in (model, data, *model.rglob("*"), *data.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    name = f"trainer-smoke-{os.getpid()}"
    run = docker_engine.docker(
        "run", f"--name={name}", "--network=none", "--read-only", "--cap-drop=ALL",
        "--security-opt=no-new-privileges", "--tmpfs=/tmp:rw,size=512m", "--tmpfs=/dev/shm:rw,size=256m",
        f"--volume={config}:/etc/finetune:ro", f"--volume={model}:/models/minilm:ro",
        f"--volume={data}:/data:ro", f"--volume={out}:/out", f"--volume={work}:/work",
        TRAINER_IMAGE,
        check=False,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        user = docker_engine.docker("inspect", "--format={{.Config.User}}", TRAINER_IMAGE).stdout.strip()
        assert user == "1000:1000"
        # Nothing was written outside the mounts: the container's own layer holds only the mount
        # points Docker itself made.
        mounts = ("/etc/finetune", "/models/minilm", "/data", "/out", "/work")
        made = {str(p) for m in mounts for p in (Path(m), *Path(m).parents) if str(p) != "/"}
        changed = {line.split(maxsplit=1)[1] for line in docker_engine.docker("diff", name).stdout.splitlines()}
        assert changed <= made, f"written outside the mounts: {sorted(changed - made)}"
    finally:
        docker_engine.docker("rm", "--force", name, check=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(f["path"].startswith("adapter/") for f in manifest["files"]), manifest["files"]
    assert (out / "metrics.json").exists()
    assert all(p.stat().st_uid == 1000 for p in out.rglob("*")), "the trainer ran as uid 1000"


def test_operator_image_entrypoint_loads_the_handlers_and_reconciles(
    docker_engine: DockerEngine, images: Images, node_plane: ControlPlane, tmp_path: Path
) -> None:
    plane = node_plane
    namespace = "image-test"
    plane.kubectl("create", "namespace", namespace)
    kube = tmp_path / "kube"
    kube.mkdir()
    kube.chmod(0o755)
    kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
    kubeconfig["clusters"][0]["cluster"]["certificate-authority"] = "/etc/kube/ca.crt"
    (kube / "config").write_text(yaml.safe_dump(kubeconfig))
    shutil.copy(plane.ca, kube / "ca.crt")
    for path in kube.iterdir():
        path.chmod(0o644)
    name = f"operator-smoke-{os.getpid()}"
    docker_engine.docker(
        "run", "--detach", f"--name={name}", "--network=host", "--read-only", "--cap-drop=ALL",
        "--security-opt=no-new-privileges", "--tmpfs=/tmp:rw,size=16m", f"--volume={kube}:/etc/kube:ro",
        "--env=KUBECONFIG=/etc/kube/config", "--env=FINETUNE_OPERATOR_HEARTBEAT_FILE=/tmp/alive",
        "--env=FINETUNE_OPERATOR_METRICS_PORT=0",
        images.operator.ref,
        # The image's own entrypoint (python -m finetune_operator) with the chart's arguments, one namespace only.
        "--standalone", f"--namespace={namespace}", "--log-format=json",
    )  # fmt: skip
    try:
        job = yaml.safe_load((REPO / "examples" / "tweets-lora.yaml").read_text())
        job["metadata"] = {"name": "from-the-image", "namespace": namespace}
        job["spec"]["suspend"] = True  # the Job is created suspended: nothing needs to run
        plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and plane.kubectl("get", "job", "from-the-image", "-n", namespace,
                                                            check=False).startswith("Error"):  # fmt: skip
            time.sleep(1)
        logs = docker_engine.docker("logs", name, check=False)
        assert "from-the-image" in plane.kubectl("get", "job", "-n", namespace), logs.stdout[-3000:] + logs.stderr
        probe = docker_engine.docker("exec", name, "python", "-m", "finetune_operator.liveness", check=False)
        assert probe.returncode == 0, probe.stderr
        assert docker_engine.docker("exec", name, "id", "-u").stdout.strip() == "10001"
        assert docker_engine.docker("exec", name, "touch", "/opt/x", check=False).returncode != 0, (
            "root fs is read-only"
        )
        assert "Traceback" not in logs.stdout + logs.stderr
    finally:
        docker_engine.docker("rm", "--force", name, check=False)
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_code_change_reuses_the_dependency_layers(
    docker_engine: DockerEngine, images: Images, tmp_path: Path
) -> None:
    """Rebuilding after an edit to the trainer's code keeps every layer up to the installed dependencies."""
    context = tmp_path / "context"
    context.mkdir()
    for item in ("pyproject.toml", "README.md", "Dockerfile.trainer", ".dockerignore", "api", "operator", "trainer",
                 "scripts"):  # fmt: skip
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, context / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, context / item)
    init = context / "trainer" / "finetune_trainer" / "__init__.py"
    init.write_text(init.read_text() + "\n# an edit\n")
    edited = docker_build(docker_engine, "Dockerfile.trainer", "finetune-trainer:layer-test", images.base, context)
    try:

        def layers(ref: str) -> list[str]:
            return list(json.loads(docker_engine.docker("image", "inspect", "--format={{json .RootFS.Layers}}",
                                                        ref).stdout))  # fmt: skip

        before, after = layers(images.trainer.ref), layers(edited.ref)
        assert len(before) == len(after)
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        # Base, requirement list, the dependency install and the user stay; only the layers from our
        # code on change (the code, its install, and WORKDIR's folder with its new time stamp).
        assert changed and min(changed) >= 4, f"changed layers {changed} of {len(before)}"
    finally:
        docker_engine.docker("rmi", "finetune-trainer:layer-test", check=False)
