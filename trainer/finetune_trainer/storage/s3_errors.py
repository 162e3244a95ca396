"""What boto3, botocore and s3transfer raise, read as the trainer's own failure: transient or not, and a
StorageError that names the operation, the s3:// object and the fix. Nothing above the storage layer
sees a boto exception (issue 21: a cut body or an outage at publishing escaped as a traceback, exit 1)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

import boto3.exceptions
import s3transfer.exceptions
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from ..errors import StorageError

# Every family the SDK raises; the storage layer catches these and nothing else escapes it.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    ClientError,
    BotoCoreError,
    boto3.exceptions.Boto3Error,
    s3transfer.exceptions.RetriesExceededError,
    s3transfer.exceptions.S3UploadFailedError,
    s3transfer.exceptions.S3DownloadFailedError,
    s3transfer.exceptions.S3CopyFailedError,
    Urllib3Error,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
# Server-side codes that say "try again": throttling, a busy or failing node, a request the server timed out.
TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed", "Throttling"}
)
HINTS = {
    "AccessDenied": "the credentials may not read/write this location; check the bucket policy or IAM role",
    "InvalidAccessKeyId": "the access key id is unknown here; check the Secret and spec.s3.endpoint",
    "SignatureDoesNotMatch": "the secret access key is wrong; check the Secret",
    "NoSuchBucket": "the bucket does not exist; create it or fix the URI",
    "NoSuchKey": "the object does not exist; fix the URI",
    "404": "the object does not exist; fix the URI",
    "403": "access denied; check the credentials and policy",
}


class Corrupt(Exception):
    """A transfer that completed but whose bytes are not the object's (size, ETag or checksum differ)."""


WRAPPERS: tuple[type[BaseException], ...] = (
    boto3.exceptions.RetriesExceededError,
    boto3.exceptions.S3UploadFailedError,
    boto3.exceptions.S3TransferFailedError,
    s3transfer.exceptions.RetriesExceededError,
    s3transfer.exceptions.S3UploadFailedError,
    s3transfer.exceptions.S3DownloadFailedError,
    s3transfer.exceptions.S3CopyFailedError,
)


def root_cause(exc: BaseException) -> BaseException:
    """The error under boto3's and s3transfer's wrappers (they keep it as last_exception or the chained cause)."""
    for _ in range(8):
        inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
        if not isinstance(exc, WRAPPERS) or inner is None:
            return exc
        exc = inner
    return exc


@dataclass(frozen=True)
class Failure:
    transient: bool  # worth another attempt within the retry budget
    what: str  # what went wrong, in words, without the operation


def _client_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def classify(exc: BaseException, stall_seconds: float) -> Failure:
    cause = root_cause(exc)
    if isinstance(cause, Corrupt):
        return Failure(True, f"the bytes received are not the object's ({cause})")
    if isinstance(cause, NoCredentialsError):
        return Failure(
            False,
            "no S3 credentials found; set spec.s3.secretRef, give the pod a ServiceAccount with an IAM role, "
            "or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY locally",
        )
    if isinstance(cause, ClientError):
        code = _client_code(cause)
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = cause.response.get("Error", {}).get("Message", "")
        if code in TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
            return Failure(True, f"the store answered {code or status} ({message or 'a server-side error'})")
        return Failure(False, f"{code} ({HINTS.get(code, message)})")
    if isinstance(cause, ReadTimeoutError) or (isinstance(cause, TimeoutError) and "read" in str(cause).lower()):
        return Failure(True, f"stalled: no byte arrived for {stall_seconds:.0f} s (spec.s3.stallSeconds)")
    if isinstance(cause, (ConnectTimeoutError, EndpointConnectionError)):
        return Failure(True, f"cannot connect to the endpoint ({cause}); check spec.s3.endpoint and the network")
    if isinstance(cause, (IncompleteReadError, ResponseStreamingError, http.client.IncompleteRead)):
        return Failure(True, f"the body was cut short ({cause})")
    if isinstance(cause, FlexibleChecksumError):
        return Failure(True, f"checksum mismatch: the bytes received are not what the store sent ({cause})")
    if isinstance(cause, (BotoCoreError, Urllib3Error, http.client.HTTPException, ConnectionError, TimeoutError)):
        return Failure(True, f"{type(cause).__name__}: {cause}")
    return Failure(True, f"{type(exc).__name__}: {exc}")


def storage_error(operation: str, where: str, failure: Failure, detail: str = "") -> StorageError:
    return StorageError(f"{operation} {where}: {failure.what}{detail}")
