"""spec.s3: the S3-compatible object store. Credentials never appear in the spec: only a Secret's name."""

from __future__ import annotations

from pydantic import Field

from .base import DNS_SUBDOMAIN, HTTP_URL, NAME_MAX, NO_CREDENTIALS, SpecModel, cel
from .enums import AddressingStyle

SECRET_KEY_NAME = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a pattern for key names, not a secret


class SecretKeyRef(SpecModel):
    """A Secret in the job's namespace holding the S3 credentials, and which keys hold what."""

    name: str = Field(max_length=NAME_MAX, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    access_key_id_key: str = Field(
        default="AWS_ACCESS_KEY_ID",
        max_length=NAME_MAX,
        pattern=SECRET_KEY_NAME,
        description="Key of the access key id.",
    )
    secret_access_key_key: str = Field(
        default="AWS_SECRET_ACCESS_KEY",
        max_length=NAME_MAX,
        pattern=SECRET_KEY_NAME,
        description="Key of the secret access key.",
    )
    session_token_key: str | None = Field(
        default=None,
        max_length=NAME_MAX,
        pattern=SECRET_KEY_NAME,
        description="Key of a session token, for temporary credentials.",
    )


class S3Spec(SpecModel):
    """The object store holding the model, data and output. Without secretRef the standard AWS chain is used (IRSA / workload identity through the pod's ServiceAccount, or the environment)."""

    endpoint: str | None = Field(
        default=None,
        max_length=512,
        # A user:password@ part passes the pattern only to meet NO_CREDENTIALS, which never echoes it.
        pattern=HTTP_URL,
        json_schema_extra=cel(NO_CREDENTIALS),
        description="Endpoint URL of an S3-compatible store (e.g. http://minio.storage:9000). Default: AWS S3 (or AWS_ENDPOINT_URL).",
    )
    region: str | None = Field(
        default=None, max_length=64, pattern=r"^[a-z0-9-]+$", description="Region, e.g. us-east-1."
    )
    addressing_style: AddressingStyle = Field(
        default=AddressingStyle.AUTO,
        description="path (bucket in the path; what MinIO and most self-hosted stores want), virtual (bucket in the host name) or auto.",
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="The Secret with the credentials, mounted as environment variables by reference."
    )
    stall_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="A request that receives no byte for this long is abandoned and retried (the connect and read timeout of every S3 call).",
    )
    retry_budget_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description="How long one storage operation (a file's transfer, a listing) may keep retrying before the job fails with StorageError.",
    )
