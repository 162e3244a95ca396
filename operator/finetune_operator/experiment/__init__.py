"""FineTuneExperiment: planning (pure), the report step's objects (pure) and the reconcile that applies them."""
