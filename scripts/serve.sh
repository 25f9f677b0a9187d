#!/usr/bin/env bash
# Start one of the two Rasa-side servers the way every start does (`make run`
# and the end-to-end tests), bound to the address its setting names:
# RASA_INTERFACE and ACTION_SERVER_INTERFACE, loopback (127.0.0.1) by default.
# Neither server checks who calls it: the web app is their only client.
#   scripts/serve.sh actions PORT [ARGS...]   action server (rasa-sdk, actions/)
#   scripts/serve.sh rasa PORT [ARGS...]      Rasa: model, endpoints, channels, HTTP API behind RASA_TOKEN
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
what=${1:?usage: serve.sh actions|rasa PORT [ARGS...]}
port=${2:?usage: serve.sh actions|rasa PORT [ARGS...]}
shift 2

warn_if_open() {  # name, address
  case "$2" in
    127.*|::1|localhost) ;;
    *) echo "WARNING: $1 listens on $2, not only on loopback. Whoever reaches port $port there" \
            "bypasses the web app's checks (limits, sender ids, masking, body size)." >&2 ;;
  esac
}

case "$what" in
  actions)
    warn_if_open "the action server" "$ACTION_SERVER_INTERFACE"
    # rasa-sdk 3.6 has no --interface option; its server binds to $SANIC_HOST.
    SANIC_HOST="$ACTION_SERVER_INTERFACE" exec .venv/bin/rasa run actions --actions actions.actions \
      --port "$port" "$@" ;;
  rasa)
    warn_if_open "Rasa" "$RASA_INTERFACE"
    : "${RASA_TOKEN:?RASA_TOKEN must be set: the HTTP API is never served without a token}"
    exec .venv/bin/rasa run --interface "$RASA_INTERFACE" --port "$port" --model models/ordos.tar.gz \
      --endpoints endpoints.yml --credentials credentials.yml --enable-api --auth-token "$RASA_TOKEN" "$@" ;;
  *)
    echo "usage: serve.sh actions|rasa PORT [ARGS...]" >&2; exit 2 ;;
esac
