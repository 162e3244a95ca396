"""Failure classes, their exit codes, and the termination message the operator reads.

The exit codes themselves live in finetune_api.exit_codes, shared with the operator.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from finetune_api.exit_codes import CLASS_OF_EXIT, EXIT_CODES, NON_RETRYABLE
from finetune_api.pod_contract import ENV_TERMINATION_LOG, TERMINATION_LOG, TerminationMessage
from finetune_api.redact import redact
from finetune_api.v1alpha1.enums import FailureClass

__all__ = [
    "CLASS_OF_EXIT",
    "EXIT_CODES",
    "NON_RETRYABLE",
    "ConfigError",
    "DataError",
    "GateNotMet",
    "OutOfMemory",
    "Preempted",
    "StorageError",
    "TrainerError",
    "write_termination_message",
]

MAX_MESSAGE = 3500  # the kubelet keeps 4096 bytes of a termination message


class TrainerError(Exception):
    failure: FailureClass = FailureClass.INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        # Messages reach logs, Events and status: a URL's user:password@ never survives into one.
        message = redact(message)
        super().__init__(message)
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.failure]


class ConfigError(TrainerError):
    failure = FailureClass.CONFIG_ERROR


class DataError(TrainerError):
    failure = FailureClass.DATA_ERROR


class StorageError(TrainerError):
    failure = FailureClass.STORAGE_ERROR


class OutOfMemory(TrainerError):
    failure = FailureClass.OUT_OF_MEMORY


class Preempted(TrainerError):
    failure = FailureClass.PREEMPTED


class GateNotMet(TrainerError):
    failure = FailureClass.GATE_NOT_MET


def termination_log() -> str:
    """Where the kubelet reads this container's termination message."""
    return os.environ.get(ENV_TERMINATION_LOG, TERMINATION_LOG)


def write_termination_message(failure: FailureClass, message: str, path: str | None = None) -> None:
    """A TerminationMessage (JSON) the operator copies into status.failure. Never raises."""
    target = path or termination_log()
    body = TerminationMessage(reason=failure, message=redact(message)[:MAX_MESSAGE]).model_dump_json()
    # Locally there is usually no termination log; the message is logged anyway.
    with contextlib.suppress(OSError):
        Path(target).write_text(body, encoding="utf-8")
