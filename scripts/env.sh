#!/usr/bin/env bash
# Creates (once) and activates the development environment: a virtualenv outside the repo,
# keyed by the dependency lists of pyproject.toml (not the whole file: a new lint rule or test
# marker must not cost a fresh torch download), so a fresh clone reuses it.
# Usage: source scripts/env.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FINETUNE_CACHE="${FINETUNE_CACHE:-$HOME/.cache/finetune-operator}"
key="$(python3 -c 'import json, sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print(json.dumps([p["dependencies"], p["optional-dependencies"], p["requires-python"]], sort_keys=True))' "$ROOT/pyproject.toml" | sha256sum | cut -c1-12)"
VENV="$FINETUNE_CACHE/venv-$key"
_finetune_started=$(date +%s)
_finetune_built=""
# A line every 30 s while a quiet install runs, so a cold one (torch: minutes) never looks hung.
_finetune_heartbeat() {
  local what="$1" start; start=$(date +%s)
  while sleep 30; do echo "    ... $what: $(( $(date +%s) - start )) s so far"; done
}
_finetune_env() {
  if [ ! -x "$VENV/bin/uv" ]; then
    echo "==> creating $VENV (once per dependency set)"
    _finetune_built=1
    mkdir -p "$FINETUNE_CACHE" && python3 -m venv "$VENV" \
      && "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv || return 1
  fi
  if [ ! -f "$VENV/.installed" ]; then
    # Marked installed only after the install succeeded: an interrupted one is redone next time.
    echo "==> installing dependencies into $VENV (torch, transformers, ...: minutes when cold)"
    _finetune_built=1
    _finetune_heartbeat "installing dependencies" & local beat=$!
    VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install -q -e "$ROOT[operator,trainer,dev]" && touch "$VENV/.installed"
    local rc=$?
    kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null
    [ "$rc" = 0 ] || return 1
  else
    # Re-point the editable install at this checkout (a fresh clone lives elsewhere); no downloads.
    VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install -q --no-deps -e "$ROOT" || return 1
  fi
}
_finetune_env || { echo "scripts/env.sh: setting up $VENV failed (see above)" >&2; return 1 2>/dev/null || exit 1; }
# The setup stage (python -m tests.setup) reports this step with the others: built or cached, seconds.
export FINETUNE_ENV_S=$(( $(date +%s) - _finetune_started ))
if [ -n "$_finetune_built" ]; then export FINETUNE_ENV_BUILT_S="$FINETUNE_ENV_S"; else unset FINETUNE_ENV_BUILT_S; fi
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
# The virtualenv is shared by every checkout on the machine and its editable install points at the
# one that sourced this last; this checkout's sources come first for every Python process started
# from here (the tests' operator and trainer subprocesses included), whatever another checkout did.
export PYTHONPATH="$ROOT/api:$ROOT/operator:$ROOT/trainer:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Never reach for a model hub at run time: every model comes from the local cache or S3.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
