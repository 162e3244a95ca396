"""spec.tracking: where the run is recorded for finding it again (MLflow). Credentials only by Secret reference."""

from __future__ import annotations

from pydantic import Field

from .base import DNS_SUBDOMAIN, HTTP_URL, NAME_MAX, NO_TRACKING_CREDENTIALS, SpecModel, cel

EXPERIMENT_NAME = r"^[^\x00-\x1f]{1,256}$"


class MlflowSecretRef(SpecModel):
    """A Secret in the job's namespace with MLflow's own variable names as keys: MLFLOW_TRACKING_TOKEN, or
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD. The trainer gets them as environment variables."""

    name: str = Field(max_length=NAME_MAX, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")


class MlflowTracking(SpecModel):
    """An MLflow tracking server. A server that is down or slow never fails or stalls training: the trainer
    warns, reports it in status.tracking, and goes on."""

    uri: str | None = Field(
        default=None,
        max_length=512,
        pattern=HTTP_URL,
        json_schema_extra=cel(NO_TRACKING_CREDENTIALS),
        description="Tracking server URL, e.g. http://mlflow.mlops:5000. Default: the operator's (Helm value tracking.mlflow.uri).",
    )
    experiment: str | None = Field(
        default=None,
        max_length=256,
        pattern=EXPERIMENT_NAME,
        description="MLflow experiment. Default: the FineTuneJob's namespace.",
    )
    registered_model: str | None = Field(
        default=None,
        max_length=256,
        pattern=EXPERIMENT_NAME,
        description="Registered model that gets a version for the output (its source: the output's URI). Default: the job's name.",
    )
    secret_ref: MlflowSecretRef | None = Field(
        default=None, description="The Secret with the server's credentials, by reference."
    )


class TrackingSpec(SpecModel):
    """Experiment tracking."""

    mlflow: MlflowTracking | None = Field(default=None, description="Record the run in MLflow.")
