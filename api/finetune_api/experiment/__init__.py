"""FineTuneExperiment logic shared by the CLI, the operator and the trainer: expansion into variants, comparison."""
