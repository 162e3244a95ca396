"""Training: load the model, run the loop with checkpoints and observability, evaluate, publish."""
