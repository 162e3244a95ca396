"""MLflow tracking: the client on its own thread (tracker), a job's run (job_run) and an experiment's parent run
(experiment_run)."""
