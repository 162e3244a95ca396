#!/usr/bin/env bash
# Creates (once) and activates the development environment: a virtualenv outside the repo,
# keyed by the dependency list, so a fresh clone reuses it and a changed pyproject.toml gets a new one.
# Usage: source scripts/env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FINETUNE_CACHE="${FINETUNE_CACHE:-$HOME/.cache/finetune-operator}"
key="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-12)"
VENV="$FINETUNE_CACHE/venv-$key"
if [ ! -x "$VENV/bin/uv" ]; then
  echo "==> creating $VENV (once per dependency set)"
  mkdir -p "$FINETUNE_CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv
fi
if [ ! -f "$VENV/.installed" ]; then
  echo "==> installing dependencies into $VENV"
  VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install -q -e "$ROOT[operator,trainer,dev]"
  touch "$VENV/.installed"
else
  # Re-point the editable install at this checkout (a fresh clone lives elsewhere); no downloads.
  VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install -q --no-deps -e "$ROOT"
fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
# Never reach for a model hub at run time: every model comes from the local cache or S3.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
set +euo pipefail
