#!/usr/bin/env bash
# Checkpoint costs: join throughput with checkpoints every 1 s vs off, checkpoint size/time and
# restore time for 1M keys. One command: bench/checkpoint/run.sh [--rounds R] [--keys N] [--impressions N]
# SLUICE_BIN=path reuses a sluice binary; otherwise the release build is used (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SLUICE_BIN:-}" ]; then
  [ -x .build/release/sluice ] || swift build -c release --product sluice
  SLUICE_BIN="$PWD/.build/release/sluice"
fi
exec python3 bench/checkpoint/bench.py --sluice "$SLUICE_BIN" "$@"
