"""Data: read files, enforce hygiene, tokenize for the task, batch with dynamic padding."""
