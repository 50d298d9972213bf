#!/usr/bin/env bash
# Keyed join, dedup and tumbling aggregate (BENCHMARKS.md "Keyed join"): sluice side by side with a
# Flink SQL interval join (PyFlink), on gen_conversions.py data, rounds interleaved, medians,
# per-core figures from CPU seconds; every count checked against bench/join/reference.py.
# One command: bench/join/run.sh [--impressions N] [--rounds R] [--no-flink] [--no-sluice]
#   --setup    only create bench/.venv-flink (pip install apache-flink) and exit
# Needs Java 17 for Flink. PyFlink is installed here only, into bench/.venv-flink (gitignored).
# SLUICE_BIN=path reuses a sluice binary; otherwise the release build is used (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/.venv-flink
setup_flink() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pyflink' 2>/dev/null; then
    echo "installing PyFlink into $VENV (once; a few hundred MB)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q apache-flink
  fi
}
case " $* " in *" --setup "*) setup_flink; exit 0;; esac
case " $* " in *" --no-flink "*) ;; *) setup_flink;; esac
if [ -z "${SLUICE_BIN:-}" ]; then
  case " $* " in
    *" --no-sluice "*) ;;
    *) [ -x .build/release/sluice ] || swift build -c release --product sluice || echo "sluice: release build failed" >&2;;
  esac
  export SLUICE_BIN="$PWD/.build/release/sluice"
fi
exec python3 bench/join/bench.py --flink-python "$VENV/bin/python" --sluice "$SLUICE_BIN" "$@"
