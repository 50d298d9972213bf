#!/usr/bin/env python3
"""W1 benchmark (BENCHMARKS.md): sluice (Lua UDFs, declarative, all cores) side by side with jq and
Lua 5.4 + lua-cjson, on the same generated events, rounds interleaved (A B C ... A B C ...).

Figures are events/s per core from CPU seconds (user + sys) of each process, medians over rounds.
usage: bench/run.py [--events N] [--rounds R]
"""
import argparse, os, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
DATA = os.path.join(BENCH, "data")
OUT = os.path.join(BENCH, "out")
SLUICE = os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build/release/sluice"))
JQ_FILTER = 'select(.event_type=="play" and (.duration_ms // 0) > 1000) | {profile_id,title_id,ts,country,os:.client.os}'


def ensure_input(n):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, f"plays-{n}.jsonl")
    if not os.path.exists(path):
        print(f"generating {n} events -> {path}", file=sys.stderr)
        with open(path + ".tmp", "w") as f:
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/gen_events.py"), "plays", str(n)], stdout=f, check=True)
        os.rename(path + ".tmp", path)
    return path


def measure(cmd, stdin_path, stdout_path, env=None):
    """Runs cmd, returns (cpu seconds of the child, wall seconds, output lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as fin, open(stdout_path, "wb") as fout:
        subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.DEVNULL, check=True, env=env)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    src = ensure_input(args.events)
    os.makedirs(OUT, exist_ok=True)

    def sluice(spec, workers):
        def run(out):
            if os.path.exists(out):
                os.remove(out)
            env = dict(os.environ, BENCH_INPUT=src, BENCH_OUTPUT=out, BENCH_WORKERS=str(workers))
            return measure([SLUICE, "run", "-q", os.path.join(BENCH, spec)], None, os.devnull, env), out
        return run

    def piped(cmd):
        def run(out):
            return measure(cmd, src, out), out
        return run

    variants = [
        ("jq 1.6", piped(["jq", "-c", JQ_FILTER])),
        ("lua5.4 + lua-cjson", piped(["lua5.4", os.path.join(BENCH, "peers/w1_cjson.lua")])),
        ("sluice W1 Lua UDFs, 1 worker", sluice("w1-lua.yaml", 1)),
        ("sluice W1 declarative, 1 worker", sluice("w1-declarative.yaml", 1)),
        ("sluice W1 Lua UDFs, all cores", sluice("w1-lua.yaml", os.cpu_count())),
        ("sluice W1 declarative, all cores", sluice("w1-declarative.yaml", os.cpu_count())),
    ]
    results = {name: [] for name, _ in variants}
    counts = {}
    for r in range(args.rounds):
        for i, (name, run) in enumerate(variants):
            (cpu, wall), out = run(os.path.join(OUT, f"v{i}.jsonl"))
            results[name].append((cpu, wall))
            counts[name] = count_lines(out)
            print(f"round {r + 1}: {name}: cpu {cpu:.2f}s wall {wall:.2f}s", file=sys.stderr)

    expected = counts["jq 1.6"]
    n = args.events
    rows = []
    for name, _ in variants:
        cpu = statistics.median(c for c, _ in results[name])
        wall = statistics.median(w for _, w in results[name])
        rows.append((name, n / cpu, n / wall, counts[name]))
    base = {name: per_core for name, per_core, _, _ in rows}
    print(f"\nW1 on {n:,} events, {args.rounds} interleaved rounds, medians; machine: {os.cpu_count()} cores")
    print(f"{'variant':36} {'events/s/core':>14} {'events/s wall':>14} {'out':>8} {'x jq':>6} {'x cjson':>8}")
    for name, per_core, per_wall, out in rows:
        ok = "" if out == expected else "  OUTPUT COUNT DIFFERS"
        print(f"{name:36} {per_core:14,.0f} {per_wall:14,.0f} {out:8,} {per_core / base['jq 1.6']:6.1f} "
              f"{per_core / base['lua5.4 + lua-cjson']:8.1f}{ok}")
    if any(c != expected for c in counts.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
