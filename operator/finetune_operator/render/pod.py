"""The trainer pod template: restricted security context, S3 credentials by reference, GPUs, placement."""

from __future__ import annotations

from typing import Any

from finetune_api.pod_contract import (
    CONFIG_FILE,
    CONFIG_MOUNT,
    CONTAINER,
    ENV_COLLECTIVE_TIMEOUT,
    ENV_IMAGE,
    ENV_METRICS_PORT,
    ENV_STATUS_FILE,
    ENV_TERMINATION_LOG,
    ENV_WORK_DIR,
    HF_HOME,
    STATUS_FILE,
    TERMINATION_LOG,
    TRACKING_CREDENTIALS,
    TRACKING_URI_ENV,
    WORK_DIR,
)
from finetune_api.resolved import ResolvedJob

from ..naming import JOB_LABEL, config_map_name, labels, service_name, trainer_service_account
from ..settings import OperatorSettings

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# Seconds of the grace period kept for torchrun itself to exit after its workers have stopped.
LAUNCHER_EXIT_SECONDS = 10


def _env(job: ResolvedJob, settings: OperatorSettings) -> list[dict[str, Any]]:
    spec = job.spec
    env: list[dict[str, Any]] = [
        {"name": ENV_TERMINATION_LOG, "value": TERMINATION_LOG},
        {"name": ENV_METRICS_PORT, "value": str(settings.trainer_metrics_port)},
        {"name": ENV_WORK_DIR, "value": WORK_DIR},
        {"name": ENV_STATUS_FILE, "value": STATUS_FILE},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - an emptyDir: the root filesystem is read-only
        {"name": "HF_HOME", "value": HF_HOME},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": ENV_IMAGE, "value": spec.image},
    ]
    ref = spec.s3.secret_ref if spec.s3 else None
    if ref:
        # Credentials reach the pod by reference only: never in the spec, args, logs or status.
        keys = [("AWS_ACCESS_KEY_ID", ref.access_key_id_key), ("AWS_SECRET_ACCESS_KEY", ref.secret_access_key_key)]
        if ref.session_token_key:
            keys.append(("AWS_SESSION_TOKEN", ref.session_token_key))
        env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key}}} for var, key in keys]
    env += _tracking_env(job, settings)
    if spec.resources.nodes > 1 or spec.resources.gpus > 1:
        env.append({"name": ENV_COLLECTIVE_TIMEOUT, "value": str(settings.collective_timeout_seconds)})
    if spec.resources.nodes > 1:
        env += [
            {"name": "MASTER_ADDR", "value": f"{job.metadata.name}-0.{service_name(job.metadata.name)}"},
            {"name": "MASTER_PORT", "value": str(settings.rendezvous_port)},
            {"name": "NNODES", "value": str(spec.resources.nodes)},
            {
                "name": "NODE_RANK",
                "valueFrom": {
                    "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
                },
            },
        ]
    ours = {var["name"] for var in env}
    env += [{"name": k, "value": v} for k, v in sorted(settings.trainer_env.items()) if k not in ours]
    return env


def _tracking_env(job: ResolvedJob, settings: OperatorSettings) -> list[dict[str, Any]]:
    """MLflow's own variables: the server (the spec's, else the chart's), and credentials from the Secret the
    spec names, by reference and each optional (a token, or a user and password)."""
    mlflow = job.spec.tracking.mlflow if job.spec.tracking else None
    if mlflow is None:
        return []
    env: list[dict[str, Any]] = []
    if uri := mlflow.uri or settings.mlflow_uri:
        env.append({"name": TRACKING_URI_ENV, "value": uri})
    if ref := mlflow.secret_ref:
        env += [
            {"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": var, "optional": True}}}
            for var in TRACKING_CREDENTIALS
        ]
    return env


def _command(job: ResolvedJob, settings: OperatorSettings) -> list[str]:
    res = job.spec.resources
    trainer = ["-m", "finetune_trainer", "--config", CONFIG_FILE]
    if res.gpus <= 1 and res.nodes == 1:
        return ["python", *trainer]
    # Every distributed shape starts its ranks with torchrun, through finetune_trainer.launch:
    # - `accelerate launch` exits 1 for any failed rank, so a data error would be retried like a crash; the
    #   launcher passes the trainer's own exit code on to the Job's podFailurePolicy.
    # - `accelerate launch --cpu` starts one process whatever --num_processes says: two pods would train two
    #   independent models into one output.
    # torchrun gives each process RANK, LOCAL_RANK and WORLD_SIZE, from which accelerate's state joins an NCCL
    # (GPU) or gloo (CPU) group; the trainer picks its precision itself.
    launch = ["python", "-m", "finetune_trainer.launch", f"--nproc_per_node={max(res.gpus, 1)}"]
    if res.nodes == 1:
        launch.append("--standalone")
    else:
        launch += [
            "--nnodes=$(NNODES)",
            "--node_rank=$(NODE_RANK)",
            "--master_addr=$(MASTER_ADDR)",
            "--master_port=$(MASTER_PORT)",
            # A rank whose peers never come fails in bounded time.
            f"--rdzv_conf=timeout={settings.rendezvous_timeout_seconds}",
        ]
    return [
        *launch,
        # The Job, not torchrun, restarts a failed group: its podFailurePolicy reads the exit code.
        "--max_restarts=0",
        # On SIGTERM torchrun gives its workers this long to checkpoint before it kills them (its default, 30 s,
        # would cut a save short); the kubelet's SIGKILL comes after the pod's whole grace period.
        f"--shutdown_timeout={shutdown_timeout(settings.termination_grace_seconds)}",
        *trainer,
    ]


def shutdown_timeout(grace_seconds: int) -> int:
    """Seconds torchrun waits for SIGTERMed workers: the pod's grace less the launcher's own exit."""
    return max(grace_seconds - LAUNCHER_EXIT_SECONDS, 1)


def _resources(job: ResolvedJob) -> dict[str, Any]:
    res = job.spec.resources
    amounts = {"cpu": res.cpu, "memory": res.memory}
    limits = dict(amounts)
    if res.gpus:
        limits[res.gpu_resource_name] = str(res.gpus)
    return {"requests": {**amounts, **({res.gpu_resource_name: str(res.gpus)} if res.gpus else {})}, "limits": limits}


def _placement(job: ResolvedJob, settings: OperatorSettings) -> dict[str, Any]:
    spec = job.spec
    sched = spec.scheduling
    out: dict[str, Any] = {}
    selector = dict(sched.node_selector or {}) if sched else {}
    if spec.resources.gpu_type:
        selector[GPU_PRODUCT_LABEL] = spec.resources.gpu_type
    if selector:
        out["nodeSelector"] = selector
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in (sched.tolerations or [])] if sched else []
    if spec.resources.gpus and settings.gpu_tolerations:
        gpu_toleration = {"key": spec.resources.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}
        if gpu_toleration not in tolerations:
            tolerations.append(gpu_toleration)
    if tolerations:
        out["tolerations"] = tolerations
    if sched and sched.affinity:
        out["affinity"] = sched.affinity
    if sched and sched.priority_class_name:
        out["priorityClassName"] = sched.priority_class_name
    if spec.resources.nodes > 1:
        # `nodes` means machines: the scheduler places one rank's pod per node, never two on one node while
        # another node fits (a rank left waiting blocks nothing: the others wait at the rendezvous, bounded).
        out["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": HOSTNAME_LABEL,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {JOB_LABEL: job.metadata.name}},
            }
        ]
    return out


def pod_template(job: ResolvedJob, settings: OperatorSettings) -> dict[str, Any]:
    name = job.metadata.name
    spec = job.spec
    container = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": _command(job, settings),
        "env": _env(job, settings),
        "ports": [{"name": "metrics", "containerPort": settings.trainer_metrics_port}]
        + ([{"name": "rendezvous", "containerPort": settings.rendezvous_port}] if spec.resources.nodes > 1 else []),
        "resources": _resources(job),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir: the root filesystem is read-only
            {"name": "shm", "mountPath": "/dev/shm"},  # noqa: S108 - memory-backed emptyDir for NCCL and loaders
        ],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": spec.service_account_name or trainer_service_account(name),
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(name)}},
            {"name": "work", "emptyDir": {"sizeLimit": settings.work_dir_size}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
        ],
        **_placement(job, settings),
    }
    if spec.resources.nodes > 1:
        pod_spec["subdomain"] = service_name(name)
    return {
        "metadata": {
            # The job's own labels (cost centre, team, ...) follow it onto its pods; ours win on clashes.
            "labels": {**(job.metadata.labels or {}), **labels(name)},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(settings.trainer_metrics_port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod_spec,
    }
