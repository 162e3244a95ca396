"""What the operator process costs: its CPU time and peak RSS from /proc, and the API requests it
made, counted from the API server's audit log (the operator has a user of its own)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from tests.controlplane.operator_process import OperatorProcess

OPERATOR_USER = "finetune-operator"
OPERATOR_TOKEN = "operator-token-for-benchmarks"  # noqa: S105 - a throwaway loopback cluster's token

# Metadata-level events for the operator's user only, once each request has completed.
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    users: [{OPERATOR_USER}]
  - level: None
"""


def audit_args(root: Path) -> list[str]:
    policy = root / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    return [f"--audit-policy-file={policy}", f"--audit-log-path={root / 'audit.log'}", "--audit-log-maxsize=0"]


def count_requests(audit_log: Path, namespace: str) -> Counter[str]:
    """The operator's requests about objects in `namespace` (watches count once, when they end)."""
    verbs: Counter[str] = Counter()
    if not audit_log.exists():
        return verbs
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if (event.get("objectRef") or {}).get("namespace") == namespace:
            verbs[f"{event['verb']} {event['objectRef'].get('resource', '')}"] += 1
    return verbs


def cpu_seconds(operator: OperatorProcess) -> float:
    fields = Path(f"/proc/{operator.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mib(operator: OperatorProcess) -> tuple[float, float]:
    """(current, peak) resident set size."""
    lines = Path(f"/proc/{operator.proc.pid}/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def retries(operator: OperatorProcess) -> int:
    """Handler runs that failed and were retried, so far."""
    return operator.output().count("failed; retrying")
