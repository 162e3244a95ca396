"""`python -m finetune_trainer.launch [torchrun flags] -m finetune_trainer --config FILE`: the ranks of a pod of a
distributed job (one per GPU, or one on CPU), started by torch.distributed.run, plus two things torchrun does not do:

- the pod exits with its trainer's exit code. torchrun exits 1 for any failed worker, so a data error would be
  retried like a crash: the operator's podFailurePolicy and failure classes read this code.
- a rank that cannot form its group at the rendezvous fails with a termination message that names the address
  and the timeout, instead of torchrun's traceback.
- a rank that gloo aborts (SIGABRT, from its own C++ thread, so the trainer writes nothing) because a peer of its
  group ended says so in its termination message: the status names the lost peer, not a bare exit code 134.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from finetune_api.v1alpha1.enums import FailureClass

from .errors import EXIT_CODES, termination_log, write_termination_message

log = logging.getLogger("finetune_trainer.launch")


def shell_exit_code(exitcode: int) -> int:
    """A worker's exit code as a shell reports it: 128 + N for a worker killed by signal N."""
    return 128 - exitcode if exitcode < 0 else exitcode


def rendezvous_message(args: Any, error: BaseException) -> str:
    """`args`: torchrun's parsed arguments."""
    where = f"{args.master_addr}:{args.master_port}"
    conf = str(args.rdzv_conf or "")
    timeout = next((kv.split("=", 1)[1] for kv in conf.split(",") if kv.startswith("timeout=")), "600")
    cause = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")  # not torch's C++ frames
    return (
        f"rank {args.node_rank} of {args.nnodes} could not form its group at the "
        f"rendezvous {where} within {timeout} s: {cause}. Every rank's pod must be running, and rank 0's port must "
        "be reachable through the job's headless Service (a NetworkPolicy or a missing pod network blocks it)."
    )


def lost_peer_message(args: Any, local_rank: int) -> str:
    """`args`: torchrun's parsed arguments; `local_rank`: the worker gloo aborted."""
    return (
        f"rank {local_rank} of the pod of node {args.node_rank} (of {args.nnodes}) was aborted (SIGABRT) in a "
        "collective: a peer of its group ended or stopped answering (its pod deleted, preempted or its node lost). "
        "The Job starts every rank again and the group resumes from its last checkpoint; each such restart counts "
        "against spec.retries."
    )


def worker_failed(args: Any, local_rank: int, exitcode: int, termination: str) -> int:
    """The pod's exit code for a failed worker, after saying why where the worker could not (`termination`: the
    termination log; a message the trainer wrote there is kept)."""
    if exitcode == -signal.SIGABRT and not _written(termination):
        message = lost_peer_message(args, local_rank)
        log.error("%s", message)
        write_termination_message(FailureClass.INTERNAL_ERROR, message, termination)
    return shell_exit_code(exitcode)


def _written(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    import torch
    from torch.distributed import DistError
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError

    # torch.distributed.run is untyped; these two are its whole entry point (its main() is parse, then run).
    parse_args: Callable[[list[str]], Any] = torchrun.parse_args
    run: Callable[[Any], None] = torchrun.run
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not torch.cuda.is_available():
        # accelerate forms a gloo group of CPU ranks only when told it runs on CPU; otherwise each rank
        # reports `rank 0 of 1` and trains alone, though torchrun set WORLD_SIZE (the workers inherit this).
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        log.error("rank %s exited with %s", rank, failure.exitcode)
        return worker_failed(args, rank, failure.exitcode, termination_log())
    except SignalException as exc:
        # The kubelet's SIGTERM: torchrun passed it on to the trainer, which checkpoints and writes its own
        # termination message; the pod ends like a process killed by that signal, not with a traceback.
        log.warning("stopped by %s", exc.sigval.name)
        return shell_exit_code(-int(exc.sigval))
    except (DistError, RendezvousError) as exc:
        message = rendezvous_message(args, exc)
        log.error("%s", message)
        write_termination_message(FailureClass.INTERNAL_ERROR, message)
        return EXIT_CODES[FailureClass.INTERNAL_ERROR]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
