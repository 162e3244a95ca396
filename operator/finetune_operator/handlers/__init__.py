"""kopf handlers: thin routes from events to reconcile.py. Run with `kopf run -m finetune_operator.handlers.main`."""
