#!/usr/bin/env python3
"""memcached sink sets/s: sluice (file source -> memcached sink, each set acknowledged on STORED)
beside pymemcache against the same memcached server in the same run, rounds interleaved, medians.

    bench/enrich/memcached.sh [--events N] [--rounds R]

Peers: pymemcache `set` one key at a time waiting for STORED (what the sink does), and pymemcache
`set_many` (pipelined, 256 keys a round trip; an upper bound no per-event acknowledgement reaches).
Every variant's key count is checked on the server (curr_items after flush_all) before it counts.
"""
import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from pymemcache.client.base import Client


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(port):
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit("memcached did not start")


def items(client):
    return int(client.stats()[b"curr_items"])


def run_sluice(sluice, spec, n, client):
    client.flush_all()
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sluice, "run", spec], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"sluice failed: {r.stderr}")
    got = items(client)
    if got != n:
        raise SystemExit(f"sluice stored {got} of {n} keys: {r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return n / wall, n / cpu


def run_pymemcache(port, pairs, n, client, many):
    client.flush_all()
    c = Client(("127.0.0.1", port), no_delay=True)
    t0 = time.perf_counter()
    c0 = time.process_time()
    if many:
        for i in range(0, len(pairs), 256):
            failed = c.set_many(dict(pairs[i:i + 256]), noreply=False)
            if failed:
                raise SystemExit(f"set_many failed for {len(failed)} keys")
    else:
        for k, v in pairs:
            if not c.set(k, v, noreply=False):
                raise SystemExit(f"set {k} failed")
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    c.close()
    got = items(client)
    if got != n:
        raise SystemExit(f"pymemcache stored {got} of {n} keys")
    return n / wall, n / max(cpu, 1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4], help="sluice variants: connections per server")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sluice-mc-bench-")
    port = free_port()
    mc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "512", "-t", "1"]
                          + (["-u", "root"] if os.getuid() == 0 else []))
    try:
        wait_ready(port)
        data = os.path.join(work, "events.jsonl")
        pairs = []
        with open(data, "w") as f:
            for i in range(args.events):
                line = json.dumps({"id": i, "title_id": i % 5000, "plays": i % 97, "watched_ms": i * 13,
                                   "pad": "x" * 60}, separators=(",", ":"))
                f.write(line + "\n")
                pairs.append((f"bench:{i}", line.encode()))
        specs = {}
        for conns in args.connections:
            spec = os.path.join(work, f"mc-{conns}.yaml")
            with open(spec, "w") as f:
                f.write(f"""pipeline: mc-bench
sources: {{ s: {{ file: {{ path: {data} }} }} }}
sinks:
  cache: {{ from: s, memcached: {{ servers: [127.0.0.1:{port}], key: 'bench:{{id}}', connections: {conns} }} }}
settings: {{ workers: 1, batch_size: 512 }}
""")
            specs[f"sluice memcached sink, connections: {conns}"] = spec
        admin = Client(("127.0.0.1", port))
        results = {k: [] for k in specs}
        results.update({"pymemcache set (one at a time)": [], "pymemcache set_many (256 pipelined)": []})
        for r in range(args.rounds):
            for name, spec in specs.items():
                results[name].append(run_sluice(args.sluice, spec, args.events, admin))
            results["pymemcache set (one at a time)"].append(run_pymemcache(port, pairs, args.events, admin, False))
            results["pymemcache set_many (256 pipelined)"].append(run_pymemcache(port, pairs, args.events, admin, True))
            print(f"round {r + 1}: " + "; ".join(f"{k} {v[-1][0]:,.0f}/s" for k, v in results.items()), file=sys.stderr)
        base = statistics.median(x[0] for x in results["pymemcache set (one at a time)"])
        print(f"memcached 1 thread on 127.0.0.1, {args.events:,} sets of ~{len(pairs[0][1])} B, {args.rounds} rounds, medians")
        print("| variant | sets/s wall | sets/s per client CPU s | x pymemcache set |")
        print("|---|---|---|---|")
        for k, v in results.items():
            wall = statistics.median(x[0] for x in v)
            cpu = statistics.median(x[1] for x in v)
            print(f"| {k} | {wall:,.0f} | {cpu:,.0f} | {wall / base:.2f} |")
    finally:
        mc.terminate()
        mc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
