#!/usr/bin/env python3
"""Latency of one event at a low rate: stdin -> sluice (no transform, then a Lua map) -> stdout.
Writes one event, waits for it to come out, pauses, repeats; prints median, p90 and max.

    bench/latency/stdin_stdout.py [--sluice PATH] [--events 200]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SPECS = {
    "passthrough": "sources: { s: { stdin: {} } }\nsinks: { o: { from: s, stdout: {} } }\n",
    "lua map": ("sources: { s: { stdin: {} } }\ntransforms: { t: { from: s, map: { udf: m.f } } }\n"
                "sinks: { o: { from: t, stdout: {} } }\n"),
}


def measure(sluice, spec, n):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/pipelines"); os.makedirs(f"{d}/udfs")
        open(f"{d}/udfs/m.lua", "w").write("local M = {}\nfunction M.f(e) e.seen = true return e end\nreturn M\n")
        open(f"{d}/pipelines/p.yaml", "w").write("pipeline: latency\n" + spec)
        p = subprocess.Popen([sluice, "run", "-q", "pipelines/p.yaml"], cwd=d, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        p.stdin.write(b'{"warmup":true}\n'); p.stdin.flush(); p.stdout.readline()
        out = []
        for i in range(n):
            t0 = time.monotonic()
            p.stdin.write(b'{"i":%d}\n' % i); p.stdin.flush()
            p.stdout.readline()
            out.append((time.monotonic() - t0) * 1000)
            time.sleep(0.01)
        p.stdin.close(); p.wait()
        out.sort()
        return out[len(out) // 2], out[int(len(out) * 0.9)], out[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()
    print("| pipeline | median | p90 | max |")
    print("|---|---|---|---|")
    for name, spec in SPECS.items():
        med, p90, mx = measure(args.sluice, spec, args.events)
        print(f"| {name} | {med:.2f} ms | {p90:.2f} ms | {mx:.2f} ms |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
