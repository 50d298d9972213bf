#!/usr/bin/env python3
"""HTTP lookup throughput (issue: enricher): events/s through a Lua map that calls ctx.lookup on
an http lookup, against scripts/geo_service.py with 5 ms and 20 ms of latency, at concurrency 1, 8,
32 and 128, with no cache (every event a distinct key: one request each) and with a cache (50
keys). Every run's output count is checked. Prints a markdown table.

    bench/enrich/lookups.py [--sluice PATH] [--latencies 5,20] [--concurrency 1,8,32,128]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UDF = """
local M = {}
function M.add_geo(e, ctx)
  local g = ctx.lookup("geo", e.k)
  e.region = g and g.region or "none"
  return e
end
return M
"""

SPEC = """
pipeline: bench-lookup
lookups:
  geo: {{ http: {{ url: '{url}/geo/{{k}}', concurrency: {c}, timeout: 5s, cache: {{ size: {cache} }} }} }}
sources:
  s: {{ file: {{ path: ../in.jsonl }} }}
transforms:
  g: {{ from: s, map: {{ udf: geo.add_geo }} }}
sinks:
  o: {{ from: g, file: {{ path: ../out.jsonl }} }}
dead_letter: {{ file: {{ path: ../dead.jsonl }} }}
settings: {{ batch_size: 1024 }}
"""


def start_service(latency):
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts/geo_service.py"), "--port", "0",
                          "--latency-ms", str(latency)], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    assert line.startswith("listening on "), line
    return p, line[len("listening on "):]


def run(sluice, url, c, cached, n):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/pipelines"); os.makedirs(f"{d}/udfs")
        open(f"{d}/udfs/geo.lua", "w").write(UDF)
        open(f"{d}/pipelines/p.yaml", "w").write(SPEC.format(url=url, c=c, cache=10000 if cached else 0))
        with open(f"{d}/in.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"i": i, "k": f"k{i % 50}" if cached else f"k{i}"}) + "\n")
        t0 = time.monotonic()
        r = subprocess.run([sluice, "run", "-q", "pipelines/p.yaml"], cwd=d, capture_output=True, text=True)
        wall = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        out = sum(1 for _ in open(f"{d}/out.jsonl"))
        assert out == n, f"{out} of {n} events out"
        return n / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--latencies", default="5,20")
    ap.add_argument("--concurrency", default="1,8,32,128")
    args = ap.parse_args()
    args.sluice = os.path.abspath(args.sluice)   # the runs start in their own directories
    print("| latency | concurrency | no cache: events/s | serial bound (1/latency x c) | cache (50 keys): events/s |")
    print("|---|---|---|---|---|")
    for latency in [int(x) for x in args.latencies.split(",")]:
        service, url = start_service(latency)
        try:
            for c in [int(x) for x in args.concurrency.split(",")]:
                n = min(4000, max(200, int(c * 1000 / latency)))   # about a second of requests at the ideal rate
                uncached = run(args.sluice, url, c, False, n)
                cached = run(args.sluice, url, c, True, 50000)
                print(f"| {latency} ms | {c} | {uncached:,.0f} | {c * 1000 / latency:,.0f} | {cached:,.0f} |", flush=True)
        finally:
            service.kill()


if __name__ == "__main__":
    main()
