#!/usr/bin/env python3
"""Instructions per message of the Kafka -> Lua -> Kafka pipeline, under valgrind's callgrind.

    python3 bench/kafka/callgrind.py --sluice .build/release/sluice --messages 100000 [--out DIR]

Starts `sluice dev kafka` (not profiled), loads an input topic of N play events with kcat (as
bench.py does), then runs `valgrind --tool=callgrind --separate-threads=no sluice run
bench/kafka/kafka-lua.yaml` until the output topic holds N messages and stops it with SIGTERM.
Prints the total instruction count (start-up, group join and shutdown included: run it with a
small --messages too and subtract to get the per-message figure). The callgrind.out file is kept
in --out for `callgrind_annotate --inclusive=yes`.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (DevKafka, watermarks, GEN)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=48)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--batch", default="512")
    ap.add_argument("--out", default=None, help="directory for callgrind.out (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--dump", default=None, help="write the output topic's records (key, timestamp, headers, value; sorted) here, the input's to DUMP.in")
    a = ap.parse_args()
    work = a.out or tempfile.mkdtemp(prefix="sluice-kafka-callgrind-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "plays.keyed")
    gen = subprocess.run([sys.executable, bench.GEN, "plays", str(a.messages), "11"], capture_output=True, text=True, check=True)
    with open(data, "w") as out:
        for line in gen.stdout.splitlines():
            key = re.search(r'"event_id":"([^"]*)"', line).group(1)
            out.write(key + "\t" + line + "\n")
    dev = bench.DevKafka(a.sluice, work)
    try:
        b = dev.bootstrap
        dev.command(f"topic cg_in {a.partitions}")
        dev.command(f"topic cg_out {a.partitions}")
        with open(data) as f:
            subprocess.run(["kcat", "-P", "-b", b, "-t", "cg_in", "-K", "\t", "-X", "linger.ms=50",
                            "-X", "batch.num.messages=10000", "-X", "queue.buffering.max.messages=1000000"],
                           stdin=f, check=True)
        assert bench.watermarks(b, "cg_in", a.partitions) == a.messages
        env = dict(os.environ, KAFKA_BROKERS=b, BENCH_IN_TOPIC="cg_in", BENCH_OUT_TOPIC="cg_out",
                   BENCH_GROUP="cg", BENCH_SESSION_TIMEOUT_MS="120000", BENCH_WORKERS=a.workers, BENCH_BATCH=a.batch)
        outfile = os.path.join(work, f"callgrind.out.{a.messages}")
        err = open(os.path.join(work, f"sluice-{a.messages}.stderr"), "w")
        p = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=no", f"--callgrind-out-file={outfile}",
                              a.sluice, "run", os.path.join(bench.HERE, "kafka-lua.yaml")],
                             env=env, stdout=subprocess.DEVNULL, stderr=err)
        t0 = time.monotonic()
        while True:
            c = bench.watermarks(b, "cg_out", a.partitions) or 0
            if c >= a.messages:
                break
            if p.poll() is not None:
                raise SystemExit(f"sluice exited {p.returncode}; see {err.name}")
            if time.monotonic() - t0 > a.timeout:
                raise SystemExit(f"timeout: {c} of {a.messages}")
            time.sleep(0.5)
        took = time.monotonic() - t0
        p.send_signal(signal.SIGTERM)
        p.wait(300)
        total = bench.watermarks(b, "cg_out", a.partitions)
        if a.dump:
            for topic, path in (("cg_out", a.dump), ("cg_in", a.dump + ".in")):
                r = subprocess.run(["kcat", "-C", "-b", b, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%T\t%h\t%s\n"],
                                   capture_output=True, text=True, check=True)
                with open(path, "w") as f:
                    f.writelines(sorted(r.stdout.splitlines(keepends=True)))
    finally:
        dev.stop()
    ir = None
    for line in open(outfile):
        if line.startswith("summary:") or line.startswith("totals:"):
            ir = int(line.split()[1])
    if total != a.messages:
        print(f"WARNING: the output topic holds {total} messages for {a.messages} in (a rebalance?)")
    print(f"messages {a.messages} out {total} wall {took:.1f} s instructions {ir:,} file {outfile}")


if __name__ == "__main__":
    main()
