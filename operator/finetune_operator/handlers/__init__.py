"""kopf handlers: thin routes from events to reconcile.py. Run with `python -m finetune_operator`."""
