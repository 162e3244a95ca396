"""Credentials in URLs: found (to refuse them) and blanked out (in every message that leaves a process).

One helper for the trainer, the operator and `finetune validate`, so no path forgets it: a
`user:password@` part of any URL becomes `***@` before a message reaches a log, an Event, a status
or a termination message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# scheme://userinfo@ : userinfo is everything up to the first '@' before the host (no '/', no space).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@'\"<>]+)@")
MASK = "***"
WHERE_CREDENTIALS_GO = (
    "put them in a Secret named by spec.s3.secretRef, or give the pod a ServiceAccount with access "
    "(IRSA / workload identity)"
)


def has_userinfo(url: str) -> bool:
    """Whether a URL carries a user[:password]@ part."""
    return _USERINFO.search(url) is not None


def redact(text: str) -> str:
    """`text` with the user[:password] of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text) if "@" in text else text


def redact_tree(value: Any) -> Any:
    """A JSON-like value (a status, an Event) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Blanks URL credentials in every record a handler emits (arguments and tracebacks included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            if has_userinfo(formatted):
                record.exc_text, record.exc_info = redact(formatted), None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (default: the root logger), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
