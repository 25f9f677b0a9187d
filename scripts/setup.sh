#!/usr/bin/env bash
# Create the project's own Python 3.10 venv and install everything into it.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  local candidates=()
  [ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
  if command -v pyenv >/dev/null 2>&1; then
    candidates+=("$(pyenv root)/versions/3.10.13/bin/python3.10")
    for p in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do candidates+=("$p"); done
  fi
  candidates+=("$HOME/.pyenv/versions/3.10.13/bin/python3.10" python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10)
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  if ! PY310=$(find_python310); then
    echo "ERROR: Rasa 3.6 needs Python 3.10, and no python3.10 was found." >&2
    echo "       Install it (e.g. 'pyenv install 3.10.13') or set PYTHON310=/path/to/python3.10." >&2
    exit 1
  fi
  echo "Using $PY310"
  rm -rf .venv
  "$PY310" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip<25" wheel "setuptools<71"
.venv/bin/python -m pip install --quiet -e ".[test]"

# System packages the tests use: Debian's chromium and a Chinese font for the
# browser tests (no downloaded browsers), PostgreSQL and Redis for the
# scale-out test, iproute2 (ss) for the exposure test; axe-core from npm for
# the accessibility check.
if [ "${SKIP_SYSTEM_PACKAGES:-0}" != "1" ]; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v ss >/dev/null 2>&1 || need+=(iproute2)  # the exposure test reads listening sockets
  fc-list 2>/dev/null | grep -qiE "wenquanyi|noto sans cjk" || need+=(fonts-wqy-microhei)
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing Debian packages: ${need[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "WARNING: the browser and scale-out tests need: ${need[*]} (apt-get install as root)." >&2
    fi
  fi
  if command -v npm >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --silent
  else
    echo "WARNING: npm not found; the accessibility check needs axe-core (npm ci)." >&2
  fi
fi
