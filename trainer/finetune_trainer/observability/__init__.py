"""Progress and metrics: a progress bar locally, Prometheus metrics and a status file in pods."""
