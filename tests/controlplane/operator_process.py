"""The operator as its own process, started with the chart's command line, against a control plane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[2]


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, kubeconfig: Path, log: Path, peering: list[str], env: dict[str, str] | None = None) -> Self:
        """`peering` is `["--standalone"]` or `["--peering=NAME"]`; the log is unbuffered, to be read live."""
        environment = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "FINETUNE_OPERATOR_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "finetune_operator", *peering],
                env=environment,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return cls(proc, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, as the kubelet sends it (kopf then leaves the peering object), then SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
