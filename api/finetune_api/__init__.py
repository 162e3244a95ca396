"""The FineTuneJob API (finetune.dev/v1alpha1): the typed spec every other part reads."""

GROUP = "finetune.dev"
VERSION = "v1alpha1"
KIND = "FineTuneJob"
PLURAL = "finetunejobs"
SINGULAR = "finetunejob"
SHORT_NAMES = ("ftj",)
API_VERSION = f"{GROUP}/{VERSION}"

# The second resource: several FineTuneJobs from one template, compared side by side.
EXPERIMENT_KIND = "FineTuneExperiment"
EXPERIMENT_PLURAL = "finetuneexperiments"
EXPERIMENT_SINGULAR = "finetuneexperiment"
EXPERIMENT_SHORT_NAMES = ("ftx",)
