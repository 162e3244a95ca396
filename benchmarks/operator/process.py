"""The operator as its own process, as in a pod: its CPU time and peak RSS from /proc, and the API
requests it made, counted from the API server's audit log (the operator has a user of its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, kubeconfig: Path, log: Path) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "FINETUNE_OPERATOR_METRICS_PORT": "0"}
        args = ["run", "--standalone", "--all-namespaces", "-m", "finetune_operator.handlers.main"]
        with log.open("wb") as sink:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "kopf", *args], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        return cls(proc, log)

    def retries(self) -> int:
        """Handler runs that failed and were retried, so far."""
        return self.log.read_text(errors="replace").count("failed temporarily")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident set size."""
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines() if ":" in line
        )
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
