#!/usr/bin/env bash
# Start the whole product on localhost: action server (5055), Rasa (5005,
# REST channel, HTTP API token-protected) and the web app (8000), each
# listening on loopback only unless its setting says otherwise.
# Trains first when the model is missing or stale. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PY=.venv/bin/python

$PY -m bot.build
bash scripts/train.sh

# The Rasa HTTP API is only for the web app (conversation history); it is
# protected by a token made fresh for each start.
export RASA_TOKEN="${RASA_TOKEN:-$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping..."
  # Each process and its children (Rasa's worker processes when RASA_WORKERS > 1)
  # get SIGTERM, again every 2 s while alive (a Sanic worker can miss the first
  # one during startup work), and SIGKILL after 10 s.
  local all=() left
  for pid in "${pids[@]}"; do all+=("$pid" $(pgrep -P "$pid" || true)); done
  for attempt in 1 2 3 4 5 6; do
    left=()
    for pid in "${all[@]}"; do  # alive and not a zombie waiting to be reaped
      ps -o stat= -p "$pid" 2>/dev/null | grep -qv Z && left+=("$pid")
    done
    [ ${#left[@]} -eq 0 ] && break
    if [ "$attempt" -eq 6 ]; then kill -KILL "${left[@]}" 2>/dev/null || true; break; fi
    kill -TERM "${left[@]}" 2>/dev/null || true
    sleep 2
  done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Several Rasa worker processes (RASA_WORKERS) need a lock store they all share,
# and several web app workers (WEB_WORKERS) a shared count of the per-client
# rate limits: both in Redis. Without one configured, a local redis-server is
# started (loopback, nothing saved): Rasa's locks in database 1 (endpoints.yml),
# the rate limits in database 2.
RASA_WORKERS="${RASA_WORKERS:-1}"
WEB_WORKERS="${WEB_WORKERS:-1}"
local_redis_started=
start_local_redis() {
  [ -n "$local_redis_started" ] && return
  if ! command -v redis-server >/dev/null; then
    echo "$1 needs Redis: install redis-server (make setup does), or set" >&2
    echo "LOCK_STORE_TYPE=redis REDIS_HOST=... REDIS_PORT=... (Rasa's locks) and" >&2
    echo "RATE_LIMIT_REDIS_URL=redis://host:port/2 (the web app's rate limits) for an existing one." >&2
    exit 1
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$VAR_DIR/redis.log" 2>&1 &
  pids+=($!)
  local_redis_started=1
}
if [ "$RASA_WORKERS" -gt 1 ] && [ "$LOCK_STORE_TYPE" = in_memory ]; then
  start_local_redis "RASA_WORKERS=$RASA_WORKERS"
  export LOCK_STORE_TYPE=rasa_addons.lock_store.AtomicRedisLockStore REDIS_HOST=127.0.0.1  # as env.sh maps "redis"
fi
if { [ "$WEB_WORKERS" -gt 1 ] || [ "$RASA_WORKERS" -gt 1 ]; } && [ -z "${RATE_LIMIT_REDIS_URL:-}" ]; then
  # The Redis Rasa's locks use when there is one; else a local one.
  if [ "$LOCK_STORE_TYPE" = in_memory ]; then
    start_local_redis "WEB_WORKERS=$WEB_WORKERS"
    REDIS_HOST=127.0.0.1
  fi
  export RATE_LIMIT_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/2"
fi
export WEB_WORKERS

# Both on $RASA_INTERFACE / $ACTION_SERVER_INTERFACE: loopback unless set otherwise.
bash scripts/serve.sh actions 5055 &
pids+=($!)
SANIC_WORKERS="$RASA_WORKERS" bash scripts/serve.sh rasa 5005 --cors "http://127.0.0.1:8000" &
pids+=($!)
$PY -m bot.web &
pids+=($!)

echo "starting: web app http://127.0.0.1:8000  (readiness: /ready)"
wait -n "${pids[@]}"
