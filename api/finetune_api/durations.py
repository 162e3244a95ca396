"""Durations as the spec writes them (6h, 90m, 1h30m, 45s): the pattern and its value in seconds.

Validation rejects a zero duration and rendering turns one into activeDeadlineSeconds; both read it here.
"""

from __future__ import annotations

import re

# A Go-style duration of hours, minutes and seconds (e.g. 6h, 90m, 1h30m, 45s).
DURATION = r"^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,7}s)?$"
_DURATION = re.compile(DURATION)


def duration_seconds(text: str) -> int:
    match = _DURATION.match(text)
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    h, m, s = (int(g[:-1]) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s
