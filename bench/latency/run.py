#!/usr/bin/env python3
"""End-to-end latency: the time from an event being written to the source until the sink has
written it, p50 / p99 / p99.9, at a steady rate, for stdin, `file` with `follow`, and Kafka on the
dev broker (`sluice dev kafka`). One command (release build unless --sluice):

    bench/latency/run.py [--rates 1000,100000] [--seconds 5] [--modes stdin,follow,kafka]

A small C probe (bench/latency/latency.c, compiled here) writes the events due every half
millisecond in one write, each carrying its CLOCK_MONOTONIC send time, and a second thread of it
stamps each line the sink wrote as it arrives. The first half second is warm-up and not counted. Peers in the same run:
`cat` for stdin (a pipe through a process) and `tail -F` for follow, `kcat -C | kcat -P` for Kafka,
all measured exactly like sluice (for Kafka the probe produces and consumes the topics itself). Reported with sluice's peak RSS.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "kafka"))
from bench import DevKafka  # noqa: E402  (the Kafka benchmark's `sluice dev kafka` wrapper)
WARMUP_MS = 500


def probe(rate, seconds, stdin, stdout, work, kafka=None):
    """Starts the C probe: it writes events to `stdout` and reads the pipeline's output on `stdin`,
    or with `kafka` = (brokers, in, out) produces to topic `in` and consumes topic `out` itself."""
    result = os.path.join(work, f"result-{time.monotonic_ns()}")
    p = subprocess.Popen([os.path.join(work, "latency"), str(rate), str(seconds), str(WARMUP_MS), result]
                         + list(kafka or ()), stdin=stdin, stdout=stdout)
    return p, result


def finish_probe(p, result, sent):
    p.wait()
    fields = open(result).read().split()
    received = int(fields[0])
    p50, p99, p999, mx = (float(x) for x in fields[1:])
    if received == 0:
        return None
    return {"p50": p50, "p99": p99, "p999": p999, "max": mx, "received": received, "sent": sent}


def run_stdin(cmd, rate, seconds, cwd):
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lat, result = probe(rate, seconds, p.stdout, p.stdin, cwd)
    p.stdin.close(); p.stdout.close()
    s = finish_probe(lat, result, int(rate * seconds))
    rss = wait_rss(p)
    return s, rss


def run_follow(cmd, rate, seconds, cwd, path):
    open(path, "wb").close()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    time.sleep(1.0)   # let it open the file and reach its end
    with open(path, "ab", buffering=0) as f:
        lat, result = probe(rate, seconds, p.stdout, f, cwd)
    p.stdout.close()
    s = finish_probe(lat, result, int(rate * seconds))
    p.send_signal(signal.SIGTERM)
    rss = wait_rss(p)
    return s, rss


def wait_rss(p):
    try:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = status
        return usage.ru_maxrss / 1024
    except ChildProcessError:
        return None


KAFKA_LOW_LATENCY = ["-X", "linger.ms=0"]


def run_kafka(kafka, middle, rate, seconds, tag, work):
    """probe -> topic in -> `middle` (sluice or a kcat pipe) -> topic out -> probe. The probe is the
    Kafka producer and consumer itself (librdkafka, linger.ms=0, fetch.wait.max.ms=1): a `kcat -P`
    reading the probe's pipe held lines 31 ms (p50) and 65 ms (p99) before producing them at 1k/s
    (measured as write time to the record's CreateTime)."""
    tin, tout = f"lat-in-{tag}", f"lat-out-{tag}"
    kafka.command(f"topic {tin} 1")
    kafka.command(f"topic {tout} 1")
    b = kafka.bootstrap
    mid = middle(b, tin, tout)
    time.sleep(6.0)   # group join and metadata for everyone before the clock starts
    lat, result = probe(rate, seconds, subprocess.DEVNULL, subprocess.DEVNULL, work, kafka=(b, tin, tout))
    s = finish_probe(lat, result, int(rate * seconds))
    rss = None
    for p in mid:
        p.send_signal(signal.SIGTERM)
        r = wait_rss(p)
        rss = r if rss is None else rss
    return s, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--rates", default="1000,100000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--modes", default="stdin,follow,kafka")
    args = ap.parse_args()
    args.sluice = os.path.abspath(args.sluice)   # the runs start in their own directories
    if not os.path.exists(args.sluice):
        subprocess.check_call(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT)
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    work = tempfile.mkdtemp(prefix="sluice-latency-")
    subprocess.check_call(["cc", "-O2", "-pthread", "-o", f"{work}/latency", os.path.join(ROOT, "bench/latency/latency.c"),
                           "-lrdkafka"])
    os.makedirs(f"{work}/pipelines")
    spec = lambda name, text: open(f"{work}/pipelines/{name}.yaml", "w").write(f"pipeline: latency-{name}\n" + text)
    spec("stdin", "sources: { s: { stdin: {} } }\nsinks: { o: { from: s, stdout: {} } }\n")
    spec("follow", "sources: { s: { file: { path: '" + work + "/in.jsonl', follow: true } } }\n"
                   "sinks: { o: { from: s, stdout: {} } }\n")
    spec("kafka", "sources: { s: { kafka: { brokers: '${B}', topics: ['${IN}'], group: '${G}', start: latest,\n"
                  "  options: { session.timeout.ms: 6000, heartbeat.interval.ms: 500 } } } }\n"
                  "sinks: { o: { from: s, kafka: { brokers: '${B}', topic: '${OUT}' } } }\n")
    rows = []
    sluice = [args.sluice, "run", "-q"]
    print(f"machine: {os.cpu_count()} cores; {args.seconds:g} s per run, first 0.5 s not counted", flush=True)
    for mode in modes:
        kafka = None
        if mode == "kafka":
            if not shutil.which("kcat"):
                print("kafka: kcat not found, skipped")
                continue
            kafka = DevKafka(args.sluice, work)
        for rate in rates:
            tag = f"{mode}-{rate}"
            if mode == "stdin":
                runs = [("sluice", lambda: run_stdin(sluice + ["pipelines/stdin.yaml"], rate, args.seconds, work)),
                        ("cat", lambda: run_stdin(["cat"], rate, args.seconds, work))]
            elif mode == "follow":
                runs = [("sluice", lambda: run_follow(sluice + ["pipelines/follow.yaml"], rate, args.seconds, work,
                                                      f"{work}/in.jsonl")),
                        ("tail -F", lambda: run_follow(["tail", "-n", "0", "-F", f"{work}/in.jsonl"], rate, args.seconds,
                                                       work, f"{work}/in.jsonl"))]
            else:
                def sluice_mid(b, tin, tout, tag=tag):
                    env = dict(os.environ, B=b, IN=tin, OUT=tout, G=f"g-{tag}")
                    return [subprocess.Popen(sluice + ["pipelines/kafka.yaml"], cwd=work, env=env,
                                             stdout=subprocess.DEVNULL)]

                def kcat_mid(b, tin, tout, tag=tag):
                    c = subprocess.Popen(["kcat", "-C", "-b", b, "-G", f"k-{tag}", tin, "-u", "-q",
                                          "-X", "fetch.wait.max.ms=5"], stdout=subprocess.PIPE)
                    p = subprocess.Popen(["kcat", "-P", "-b", b, "-t", tout] + KAFKA_LOW_LATENCY, stdin=c.stdout)
                    c.stdout.close()
                    return [c, p]
                runs = [("sluice", lambda: run_kafka(kafka, sluice_mid, rate, args.seconds, "s-" + tag, work)),
                        ("kcat pipe", lambda: run_kafka(kafka, kcat_mid, rate, args.seconds, "k-" + tag, work))]
            for who, fn in runs:
                s, rss = fn()
                if s is None:
                    print(f"{mode} {rate}/s {who}: nothing received", flush=True)
                    continue
                row = (f"| {mode} | {rate:,}/s | {who} | {s['p50']:.2f} | {s['p99']:.2f} | {s['p999']:.2f} | "
                       f"{s['max']:.2f} | {s['received']:,}/{s['sent']:,} | "
                       f"{'' if rss is None or who != 'sluice' else f'{rss:.0f} MiB'} |")
                rows.append(row)
                print(row, flush=True)
        if kafka:
            kafka.stop()
    print("\n| source | rate | pipeline | p50 ms | p99 ms | p99.9 ms | max ms | received/sent | sluice peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
