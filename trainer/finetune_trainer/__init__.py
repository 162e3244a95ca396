"""The trainer: runs one FineTuneJob, locally (`finetune run`) or in a pod (`accelerate launch -m finetune_trainer`)."""
