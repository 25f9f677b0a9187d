#!/usr/bin/env bash
# Create the project's own Python 3.10 venv and install everything into it.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/python310.sh  # find_python310

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
# Exactly the environment the tests ran in: every package at its locked version,
# checked against its hashes (requirements.lock, made by scripts/lock.sh from
# pyproject.toml); then the project itself, with nothing more.
.venv/bin/python -m pip install --quiet --upgrade "pip<25"
.venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
if ! .venv/bin/python -m pip check >/dev/null; then
  .venv/bin/python -m pip check >&2 || true
  echo "ERROR: requirements.lock does not match pyproject.toml: run 'make lock' and commit the lock." >&2
  exit 1
fi

# System packages the tests use: Debian's chromium and a Chinese font for the
# browser tests (no downloaded browsers), PostgreSQL, Redis and nginx for the
# scale-out test and the load benchmark's replicas, iproute2 (ss) for the
# exposure test; axe-core from npm for the accessibility check.
if [ "${SKIP_SYSTEM_PACKAGES:-0}" != "1" ]; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
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
