#!/usr/bin/env bash
# Kafka -> Lua UDF -> Kafka, 500k messages on `sluice dev kafka`, side by side with a kcat pipe.
# One command: bench/kafka/run.sh [--messages N] [--partitions P] [--rounds R] [--workers W]
# Builds the release binary unless SLUICE_BIN points at one; needs kcat and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SLUICE_BIN:-}" ]; then
  swift build -c release --product sluice
  export SLUICE_BIN="$PWD/.build/release/sluice"
fi
exec python3 bench/kafka/bench.py --sluice "$SLUICE_BIN" "$@"
