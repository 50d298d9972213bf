#!/usr/bin/env bash
# Changelog restore rate: one command, bench/checkpoint/changelog.sh [--keys N] [--workers W].
# SLUICE_BIN=path reuses a sluice binary; otherwise the release build is used (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SLUICE_BIN:-}" ]; then
  [ -x .build/release/sluice ] || swift build -c release --product sluice
  SLUICE_BIN="$PWD/.build/release/sluice"
fi
exec python3 bench/checkpoint/changelog.py --sluice "$SLUICE_BIN" "$@"
