"""From observed Kubernetes state (the Job and its pods) to the FineTuneJob's status. Pure functions."""
