# Sourced by run.sh and test.sh: defaults for every setting the Rasa side reads
# from endpoints.yml. Anything already set in the environment wins.
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export TF_CPP_MIN_LOG_LEVEL=3
export VAR_DIR="${VAR_DIR:-$ROOT_DIR/var}"
export ACTION_SERVER_URL="${ACTION_SERVER_URL:-http://127.0.0.1:5055}"
export RASA_URL="${RASA_URL:-http://127.0.0.1:5005}"
export TRACKER_DB_DIALECT="${TRACKER_DB_DIALECT:-sqlite}"
export TRACKER_DB_URL="${TRACKER_DB_URL:-sqlite:///$VAR_DIR/tracker.db}"
export LOCK_STORE_TYPE="${LOCK_STORE_TYPE:-in_memory}"
# "redis" is served by our subclass of Rasa's RedisLockStore, which changes a
# conversation's ticket queue atomically (rasa_addons/lock_store.py): Rasa's own
# lets two processes take the same conversation at once.
[ "$LOCK_STORE_TYPE" = redis ] && export LOCK_STORE_TYPE=rasa_addons.lock_store.AtomicRedisLockStore
export REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
export REDIS_PORT="${REDIS_PORT:-6379}"
# Rasa and the action server listen on loopback only: the web app is their one
# client. Another address (0.0.0.0, a LAN address) opens them on purpose, and
# with them a way around every check the web app makes (README: Operations).
export RASA_INTERFACE="${RASA_INTERFACE:-127.0.0.1}"
export ACTION_SERVER_INTERFACE="${ACTION_SERVER_INTERFACE:-127.0.0.1}"
mkdir -p "$VAR_DIR"
