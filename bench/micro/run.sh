#!/usr/bin/env bash
# Usage: bench/micro/run.sh [events] [passes]
# Builds the micro-benchmark in release mode and reports ns/event for validate, match,
# project and the W1 declarative total over generated play events.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-100000}"
passes="${2:-20}"
data="${TMPDIR:-/tmp}/sluice-micro-plays-$n.jsonl"
[ -s "$data" ] || python3 "$here/../../scripts/gen_events.py" plays "$n" > "$data"
swift build -c release --package-path "$here" --scratch-path "$here/.build" | grep -E "error|warning: unre" || true
exec "$here/.build/release/jsonbench" "$data" "$passes"
