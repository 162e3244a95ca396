# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
ENV := source scripts/env.sh

.PHONY: demo test setup lint typecheck unit crd

demo:  ## fine-tune the shipped MiniLM on the shipped tweets on CPU (the embedded default)
	$(ENV) && python -m tests.support.demo --max-samples 8000

test:  ## build every cache (visible, timed steps), lint, type-check and run the whole test suite
	$(ENV) && python -m tests.setup && ruff check . && ruff format --check . && mypy && python -m pytest --durations=15

setup:  ## only the setup stage: bring every cache the tests use up to date (what `make test` runs first)
	$(ENV) && python -m tests.setup

lint:
	$(ENV) && ruff check . && ruff format --check .

typecheck:
	$(ENV) && mypy

unit:
	$(ENV) && python -m pytest tests/unit

crd:  ## regenerate the CRDs (and the chart's copies) and the spec references from the spec models
	$(ENV) && finetune crd > crds/finetunejob.yaml && cp crds/finetunejob.yaml charts/finetune-operator/files/ \
	  && finetune crd --resource experiment > crds/finetuneexperiment.yaml \
	  && cp crds/finetuneexperiment.yaml charts/finetune-operator/files/ \
	  && finetune reference > docs/spec-reference.md \
	  && finetune reference --resource experiment > docs/experiment-reference.md
