"""Liveness without a port: the operator's event loop touches a file, the kubelet's exec probe checks its age.

An HTTP endpoint would serve as well inside a pod network, but replicas on the host network of one
node would fight over its port; a file in each pod's own /tmp cannot clash. The file is touched
from kopf's event loop, so a wedged loop stops the beat and the probe fails.

The probe: `python -m finetune_operator.liveness` (exit 0 when the beat is fresh).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from .settings import OperatorSettings


async def beat(path: Path, interval: float) -> None:
    while True:
        path.touch()
        await asyncio.sleep(interval)


def age_seconds(path: Path, now: float | None = None) -> float | None:
    """Seconds since the last beat; None when there has been none."""
    try:
        return (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return None


def main() -> int:
    settings = OperatorSettings()
    if not settings.heartbeat_file:
        print("FINETUNE_OPERATOR_HEARTBEAT_FILE is not set: nothing to check", file=sys.stderr)
        return 1
    age = age_seconds(Path(settings.heartbeat_file))
    if age is None or age > settings.heartbeat_max_age:
        print(f"no heartbeat for {'ever' if age is None else f'{age:.0f} s'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
