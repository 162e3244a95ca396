"""The trainer: runs one FineTuneJob, locally (`finetune run`) or in a pod (`python -m finetune_trainer`)."""
