#!/usr/bin/env bash
# Everything `make test` runs, in order. Each step fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false
PY=.venv/bin/python
mkdir -p test-artifacts
$PY -m pytest tests "$@"
