#!/usr/bin/env bash
# Hot reload benchmark, one command:  bench/reload/run.sh [--reloads N] [--rate EVENTS_PER_S] ...
# Builds release (unless SLUICE_BIN is set), then measures, while a steady stream flows through a
# Lua map UDF: latency from the UDF file write to the first event processed by the new code
# (the UDF stamps ctx.now()), p50/p99 over the reloads, and output throughput before/during/after.
# Two passes: a paced stream (default 100k events/s) and a saturated one (as fast as it goes).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${SLUICE_BIN:-}" ]; then
  swift build -c release --product sluice >&2
  SLUICE_BIN=.build/release/sluice
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "binary: $SLUICE_BIN"
python3 bench/reload/reload_bench.py --bin "$SLUICE_BIN" --rate "${RATE:-100000}" "$@"
python3 bench/reload/reload_bench.py --bin "$SLUICE_BIN" --rate 0 "$@"
