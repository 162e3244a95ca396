"""The multi-node launcher's pure parts: exit codes as a shell reports them, the rendezvous and lost-peer messages."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from finetune_api.pod_contract import TerminationMessage
from finetune_api.v1alpha1.enums import FailureClass
from finetune_trainer.launch import rendezvous_message, shell_exit_code, worker_failed


def test_a_trainer_exit_code_passes_through_and_a_signal_reads_as_128_plus_its_number() -> None:
    assert shell_exit_code(11) == 11
    assert shell_exit_code(0) == 0
    assert shell_exit_code(-9) == 137  # SIGKILL, e.g. the kernel's OOM killer
    assert shell_exit_code(-15) == 143


def test_the_rendezvous_message_names_the_address_the_timeout_and_the_fix() -> None:
    args = Namespace(master_addr="job-0.job", master_port=29500, node_rank=1, nnodes=2, rdzv_conf="timeout=300")
    error = RuntimeError("The client socket has timed out after 300000ms.\nframe #0: c10::Error")
    message = rendezvous_message(args, error)
    assert message.startswith("rank 1 of 2 could not form its group at the rendezvous job-0.job:29500 within 300 s")
    assert "timed out after 300000ms. Every rank's pod" in message and "frame #0" not in message
    assert "headless Service" in message


def test_without_a_timeout_the_message_states_torchruns_default() -> None:
    args = Namespace(master_addr="a", master_port=1, node_rank=0, nnodes=2, rdzv_conf="")
    assert "within 600 s" in rendezvous_message(args, RuntimeError(""))


def test_a_rank_aborted_by_gloo_says_it_lost_a_peer(tmp_path: Path) -> None:
    args = Namespace(node_rank=0, nnodes=2)
    log = tmp_path / "termination-log"
    assert worker_failed(args, 0, -6, str(log)) == 134
    message = TerminationMessage.model_validate_json(log.read_text())
    assert message.reason == FailureClass.INTERNAL_ERROR
    assert message.message.startswith("rank 0 of the pod of node 0 (of 2) was aborted (SIGABRT) in a collective")
    assert "a peer of its group ended" in message.message and "spec.retries" in message.message


def test_the_trainers_own_message_is_kept_and_other_signals_say_nothing(tmp_path: Path) -> None:
    args = Namespace(node_rank=1, nnodes=2)
    log = tmp_path / "termination-log"
    log.write_text('{"reason": "DataError", "message": "row 3"}')
    assert worker_failed(args, 0, -6, str(log)) == 134
    assert "row 3" in log.read_text()
    other = tmp_path / "other"
    assert worker_failed(args, 0, -9, str(other)) == 137
    assert worker_failed(args, 0, 11, str(other)) == 11
    assert not other.exists(), "a kill or the trainer's own exit code needs no word from the launcher"
