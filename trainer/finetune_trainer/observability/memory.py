"""Peak memory of the training loop, a cost figure of the comparison: CUDA memory on GPUs, resident set on CPU.

On CPU the kernel's own high-water mark (ru_maxrss) covers the whole process, so runs done one after
another in one process (`finetune run experiment.yaml`) would all report the first run's peak. The
resident set is sampled at each step instead, which is what a later run actually used.
"""

from __future__ import annotations

import os

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    def __init__(self) -> None:
        self.cuda = torch.cuda.is_available()
        self.peak = 0
        if self.cuda:
            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)

    def sample(self) -> int:
        if self.cuda:
            now = max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        else:
            now = _resident_bytes()
        self.peak = max(self.peak, now)
        return self.peak
