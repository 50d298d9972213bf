#!/usr/bin/env bash
# One command for the W1 benchmark: builds release, then runs bench/run.py (jq and lua-cjson peers in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .build/release/sluice ] || swift build -c release --product sluice
exec python3 bench/run.py "$@"
