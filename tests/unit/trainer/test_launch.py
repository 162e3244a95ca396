"""The multi-node launcher's pure parts: exit codes as a shell reports them, and the rendezvous message."""

from __future__ import annotations

from argparse import Namespace

from finetune_trainer.launch import rendezvous_message, shell_exit_code


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
