#!/usr/bin/env python3
"""Hot reload latency and throughput under load (see bench/reload/run.sh).

A stdin -> Lua map -> stdout pipeline with `udfs: { reload: watch }`. A feeder thread writes a
steady stream of ~170-byte events (paced to --rate events/s, or as fast as the pipe takes them
with --rate 0). Every --interval seconds the UDF file is replaced (write a temporary file, take
the timestamp, rename it over udfs/stamp.lua); the new version stamps a new constant `k` and
`t = ctx.now()`. Latency of a reload = `t` of the first output event carrying the new `k` minus
the timestamp taken right before the rename. Output throughput is counted in 100 ms buckets.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

UDF = """local M = {{}}
function M.stamp(event, ctx)
  event.k = {k}
  event.t = ctx.now()
  return event
end
return M
"""

SPEC = """pipeline: reload-bench
udfs: {{ dir: ../udfs, reload: watch }}
sources:
  s: {{ stdin: {{}} }}
transforms:
  t: {{ from: s, map: {{ udf: stamp.stamp }} }}
sinks:
  o: {{ from: t, stdout: {{}} }}
settings: {{ batch_size: {batch}, workers: {workers} }}
"""


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    i = (len(v) - 1) * p / 100.0
    lo, hi = int(i), min(int(i) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--reloads", type=int, default=25)
    ap.add_argument("--rate", type=float, default=100000, help="events/s; 0 = as fast as possible")
    ap.add_argument("--interval", type=float, default=0.3, help="seconds between reloads")
    ap.add_argument("--before", type=float, default=3.0, help="seconds of steady state before the first reload")
    ap.add_argument("--after", type=float, default=3.0, help="seconds after the last reload")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", default="auto", help="settings.workers (auto = one per core)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sluice-reload-bench-")
    udfs = os.path.join(work, "udfs")
    os.makedirs(udfs)
    os.makedirs(os.path.join(work, "pipelines"))
    udf_path = os.path.join(udfs, "stamp.lua")
    with open(udf_path, "w") as f:
        f.write(UDF.format(k=100))
    with open(os.path.join(work, "pipelines", "p.yaml"), "w") as f:
        f.write(SPEC.format(batch=args.batch, workers=args.workers))

    proc = subprocess.Popen([os.path.abspath(args.bin), "run", "pipelines/p.yaml"], cwd=work,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)

    # Input: blocks of 1,000 events.
    block_lines = 1000
    line = ('{"seq":%d,"event_type":"play","profile_id":"p-000123","title_id":4711,"duration_ms":1234567,'
            '"country":"US","client":{"os":"ios","app_version":"1.2.3"},"tags":["hd","dolby"]}\n')
    block = b"".join((line % i).encode() for i in range(block_lines))
    stop = threading.Event()
    fed = [0]

    def feeder():
        start = time.monotonic()
        try:
            while not stop.is_set():
                proc.stdin.write(block)
                fed[0] += block_lines
                if args.rate > 0:
                    due = fed[0] / args.rate - (time.monotonic() - start)
                    if due > 0:
                        time.sleep(due)
        except (BrokenPipeError, ValueError, OSError):
            pass

    # Output: count lines per 100 ms bucket; find the first event of each new version.
    buckets = {}          # int(time*10) -> events
    first_seen = {}       # k -> (stamped t ms, wall ms when read)
    pending = {}          # k -> compiled needle
    lock = threading.Lock()
    t_stamp = re.compile(rb'"t":(\d+)')

    def reader():
        leftover = b""
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            now = time.time()
            data = leftover + chunk
            cut = data.rfind(b"\n") + 1
            leftover, data = data[cut:], data[:cut]
            b = int(now * 10)
            buckets[b] = buckets.get(b, 0) + data.count(b"\n")
            with lock:
                for k, needle in list(pending.items()):
                    i = data.find(needle)
                    if i >= 0:
                        end = data.find(b"\n", i)
                        start = data.rfind(b"\n", 0, i) + 1
                        m = t_stamp.search(data, start, end)
                        first_seen[k] = (int(m.group(1)), now * 1000.0)
                        del pending[k]

    err_lines = []
    live_at = {}          # version number -> wall ms when "UDF version N is live" was read
    live_re = re.compile(r"UDF version (\d+) is live")

    def err_reader():
        for l in proc.stderr:
            text = l.decode(errors="replace").rstrip("\n")
            m = live_re.search(text)
            if m:
                live_at[int(m.group(1))] = time.time() * 1000.0
            err_lines.append(text)

    threads = [threading.Thread(target=f, daemon=True) for f in (feeder, reader, err_reader)]
    for t in threads:
        t.start()

    time.sleep(args.before)
    t_first_reload = time.time()
    writes = {}
    for i in range(args.reloads):
        k = 101 + i
        tmp = udf_path + ".tmp~"           # not *.lua: the watcher ignores it
        with open(tmp, "w") as f:
            f.write(UDF.format(k=k))
        with lock:
            pending[k] = b'"k":%d,' % k
        t0 = time.time() * 1000.0          # right before the rename
        os.rename(tmp, udf_path)
        writes[k] = t0
        time.sleep(args.interval)
    t_last_reload = time.time()
    time.sleep(args.after)
    t_end = time.time()
    stop.set()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    for t in threads[1:]:
        t.join(timeout=10)
    shutil.rmtree(work, ignore_errors=True)

    summary = next((l for l in reversed(err_lines) if " events; wrote " in l), "<no summary>")
    rejected = [l for l in err_lines if "rejected" in l and "UDF reload" in l]
    lat = [first_seen[k][0] - writes[k] for k in writes if k in first_seen]
    seen_lat = [first_seen[k][1] - writes[k] for k in writes if k in first_seen]
    missing = [k for k in writes if k not in first_seen]
    # Version number of the reload that stamps k: k = 101 + i  ->  version i + 2 = k - 99.
    publish = [live_at[k - 99] - writes[k] for k in writes if (k - 99) in live_at]

    def rate(t_from, t_to):
        b0, b1 = int(t_from * 10), int(t_to * 10)
        n = sum(v for b, v in buckets.items() if b0 <= b < b1)
        return n / max(1e-9, (b1 - b0) / 10.0)

    def min_bucket(t_from, t_to):
        b0, b1 = int(t_from * 10), int(t_to * 10)
        return min((buckets.get(b, 0) * 10 for b in range(b0, b1)), default=0)

    t_start = t_first_reload - args.before
    mode = "saturated (as fast as the pipe takes it)" if args.rate <= 0 else "paced at %d events/s" % args.rate
    print("== input %s, %d reloads every %.2f s, batch_size %d, workers %s"
          % (mode, args.reloads, args.interval, args.batch, args.workers))
    if lat:
        print("reload latency, file write -> first event on new code (ctx.now(), 1 ms resolution):"
              " p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)"
              % (percentile(lat, 50), percentile(lat, 99), max(lat), len(lat)))
        print("  same, until the event was read from sluice's stdout: p50 %.1f ms, p99 %.1f ms"
              % (percentile(seen_lat, 50), percentile(seen_lat, 99)))
        if publish:
            print("  of which file write -> 'UDF version N is live' read from stderr (debounce 15 ms + copy,"
                  " compile, self-test): p50 %.1f ms, p99 %.1f ms" % (percentile(publish, 50), percentile(publish, 99)))
        print("  all (ms): " + " ".join("%.0f" % x for x in lat))
    if missing:
        print("reloads never seen in the output: %s" % missing)
    print("throughput, events/s out (mean; lowest 100 ms window):")
    print("  before  %9.0f; %9.0f" % (rate(t_start + 1.0, t_first_reload), min_bucket(t_start + 1.0, t_first_reload)))
    print("  during  %9.0f; %9.0f" % (rate(t_first_reload, t_last_reload), min_bucket(t_first_reload, t_last_reload)))
    print("  after   %9.0f; %9.0f" % (rate(t_last_reload + 0.5, t_end), min_bucket(t_last_reload + 0.5, t_end)))
    print("summary: " + summary)
    if rejected:
        print("rejected: %s" % rejected[:3])
    ok = not missing and not rejected and ("udf version %d," % (1 + args.reloads)) in summary
    if not ok:
        print("FAILED: not every reload went live exactly once", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
