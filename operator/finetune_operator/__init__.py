"""The FineTuneJob operator: spec -> checks -> rendered Kubernetes objects -> observed status."""
