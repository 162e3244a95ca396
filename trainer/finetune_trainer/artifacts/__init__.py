"""What a run leaves behind: the model or adapter, metrics, card, loss curve, and the manifest written last."""
