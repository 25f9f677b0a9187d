#!/usr/bin/env bash
# Start the whole product on localhost: action server (5055), Rasa (5005,
# REST + socket.io, HTTP API token-protected) and the web app (8000).
# Trains first when the model is missing or stale. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PY=.venv/bin/python
RASA=.venv/bin/rasa

$PY -m bot.build
bash scripts/train.sh

# The Rasa HTTP API is only for the web app (conversation history); it is
# protected by a token made fresh for each start.
export RASA_TOKEN="${RASA_TOKEN:-$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$RASA run actions --actions actions.actions --port 5055 &
pids+=($!)
$RASA run --model models/ordos.tar.gz --endpoints endpoints.yml --credentials credentials.yml \
  --port 5005 --enable-api --auth-token "$RASA_TOKEN" --cors "http://127.0.0.1:8000" &
pids+=($!)
$PY -m bot.web &
pids+=($!)

echo "starting: web app http://127.0.0.1:8000  (readiness: /ready)"
wait -n "${pids[@]}"
