"""FineTuneExperiment on the trainer's side: the local runner, the comparison report and the promotion."""
