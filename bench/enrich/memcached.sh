#!/usr/bin/env bash
# memcached sink sets/s beside pymemcache against the same server in the same run (bench/RESULTS.md
# "memcached sink"). One command: bench/enrich/memcached.sh [--events N] [--rounds R]
# pymemcache (PyPI) is installed here only, into bench/.venv-memcached (gitignored).
# SLUICE_BIN=path reuses a sluice binary; otherwise the release build is used (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/.venv-memcached
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pymemcache' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pymemcache
fi
command -v memcached >/dev/null || { echo "memcached not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
if [ -z "${SLUICE_BIN:-}" ]; then
  [ -x .build/release/sluice ] || swift build -c release --product sluice
  SLUICE_BIN="$PWD/.build/release/sluice"
fi
exec "$VENV/bin/python" bench/enrich/memcached_bench.py --sluice "$SLUICE_BIN" "$@"
