"""Metrics of the untouched and the tuned model, and the gate between them."""
