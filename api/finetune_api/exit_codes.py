"""The trainer's exit codes: the contract between the trainer and the operator's podFailurePolicy.

Config, data, storage and gate failures end the job at once (a retry cannot help); preemption,
out-of-memory kills and internal errors may retry, and the trainer resumes from its checkpoint.
"""

from __future__ import annotations

from .v1alpha1.enums import FailureClass

EXIT_CODES: dict[FailureClass, int] = {
    FailureClass.CONFIG_ERROR: 10,
    FailureClass.DATA_ERROR: 11,
    FailureClass.STORAGE_ERROR: 12,
    FailureClass.OUT_OF_MEMORY: 13,
    FailureClass.PREEMPTED: 14,
    FailureClass.GATE_NOT_MET: 15,
    FailureClass.INTERNAL_ERROR: 1,
}
CLASS_OF_EXIT = {code: cls for cls, code in EXIT_CODES.items()}
NON_RETRYABLE = frozenset(
    EXIT_CODES[c]
    for c in (FailureClass.CONFIG_ERROR, FailureClass.DATA_ERROR, FailureClass.STORAGE_ERROR, FailureClass.GATE_NOT_MET)
)
