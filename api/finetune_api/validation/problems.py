"""One thing wrong with a spec: where, what, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..redact import redact


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str = ""
    severity: Severity = Severity.ERROR
    source: str = "schema"  # schema, cel or check: which layer found it

    def render(self) -> str:
        # CEL messages already open with the field path; do not say it twice.
        text = self.message if self.message.startswith(self.path) else f"{self.path}: {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return redact(text)


def shown(value: object, limit: int = 60) -> str:
    """A user value quoted for a message: bounded, with control characters escaped (log safety)."""
    text = redact(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
