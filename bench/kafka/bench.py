#!/usr/bin/env python3
"""Kafka -> Lua UDF -> Kafka on the dev broker, side by side with a kcat pipe (run by bench/kafka/run.sh).

One `sluice dev kafka` broker holds an input topic of N play events (keyed by event_id, spread over
enough partitions to stay under the mock broker's ~5 MiB per partition). Then, alternately (A B A B ...):

  sluice  `sluice run bench/kafka/kafka-lua.yaml`: consumer group -> Lua map adding a field -> producer
          (once per --batches value: settings.batch_size, which sets how much the pipeline holds)
  kcat    `kcat -C -t in -e -f '%k\\t%s\\n' | kcat -P -t out -K '\\t'` (copy, no transformation)

each into a fresh output topic. The output topic's high watermarks (`kcat -Q`, every 50 ms) give the
time of the first and of the last message out; msg/s = messages copied / (last out - first out), the
"first message in -> last message out" figure (start-up and the group join are excluded for both, and
reported separately as "from launch"). CPU seconds are the copier's own (wait4 rusage).
"""
import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "kafka")
GEN = os.environ.get("GEN_EVENTS", os.path.join(ROOT, "scripts", "gen_events.py"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class DevKafka:
    def __init__(self, sluice, logdir):
        self.err = open(os.path.join(logdir, "dev-kafka.stderr"), "w")
        self.p = subprocess.Popen([sluice, "dev", "kafka"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.bootstrap = self.p.stdout.readline().strip()
        if not self.bootstrap:
            raise SystemExit("sluice dev kafka did not start; see " + self.err.name)

    def command(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise SystemExit(f"dev kafka: {line}: {answer}")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def watermarks(bootstrap, topic, partitions):
    """Sum of the high watermarks of a topic (None if kcat failed)."""
    args = ["kcat", "-Q", "-b", bootstrap]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None
    total = 0
    for line in r.stdout.splitlines():
        if " offset " in line:
            total += int(line.rsplit(" ", 1)[1])
    return total


SYS = [0.0]   # system seconds of the copiers reaped by the current measurement (wait4)


def wait4(p):
    """Reaps a Popen child and returns its CPU seconds (user + system)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    SYS[0] += ru.ru_stime
    return ru.ru_utime + ru.ru_stime


def failed(p):
    """True if the child exited with a non-zero status; it is not reaped (wait4 must still see it)."""
    r = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return r is not None and r.si_pid == p.pid and r.si_status != 0


def watch(bootstrap, topic, partitions, n, procs, timeout):
    """Polls the output topic until it holds n messages; returns (t_first, count_at_first, t_last)."""
    t_first = c_first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = watermarks(bootstrap, topic, partitions)
        t = time.monotonic()
        if c:
            if t_first is None:
                t_first, c_first = t, c
            if c >= n:
                return t_first, c_first, t
        if any(failed(p) for p in procs):
            raise SystemExit(f"a copier failed before {topic} was complete")
        time.sleep(0.05)
    raise SystemExit(f"{topic}: only {watermarks(bootstrap, topic, partitions)} of {n} after {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build/release/sluice")))
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--partitions", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--batches", default="512,4096",
                    help="sluice settings.batch_size values to run (each is one copier in the A B C rotation)")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()

    n, parts = a.messages, a.partitions
    work = tempfile.mkdtemp(prefix="sluice-kafka-bench-")
    log(f"work dir {work}")
    data = os.path.join(work, "plays.keyed")
    with open(data, "w") as out:
        gen = subprocess.run([sys.executable, GEN, "plays", str(n), "11"], capture_output=True, text=True, check=True)
        size = 0
        for line in gen.stdout.splitlines():
            out.write(json.loads(line)["event_id"] + "\t" + line + "\n")
            size += len(line)
    per_partition = size / parts / 2**20
    log(f"{n} events, {size / n:.0f} bytes each, ~{per_partition:.1f} MiB per partition")
    if per_partition > 4.5:
        raise SystemExit("too much data per partition for the mock broker (~5 MiB): raise --partitions")

    dev = DevKafka(a.sluice, work)
    try:
        b = dev.bootstrap
        dev.command(f"topic bench_in {parts}")
        t = time.monotonic()
        with open(data) as f:
            subprocess.run(["kcat", "-P", "-b", b, "-t", "bench_in", "-K", "\t", "-X", "linger.ms=50",
                            "-X", "batch.num.messages=10000", "-X", "queue.buffering.max.messages=1000000"],
                           stdin=f, check=True)
        have = watermarks(b, "bench_in", parts)
        if have != n:
            raise SystemExit(f"bench_in holds {have} messages, expected {n}")
        log(f"input loaded in {time.monotonic() - t:.1f} s")

        kinds = [f"sluice-b{x}" for x in a.batches.split(",")] + ["kcat"]
        results = {k: [] for k in kinds}
        for r in range(a.rounds):
            for kind in kinds:
                out = f"out_{kind.replace('-', '_')}_{r}"
                dev.command(f"topic {out} {parts}")
                launch = time.monotonic()
                if kind.startswith("sluice"):
                    env = dict(os.environ, KAFKA_BROKERS=b, BENCH_IN_TOPIC="bench_in", BENCH_OUT_TOPIC=out,
                               BENCH_GROUP=f"bench-{kind}-{r}", BENCH_WORKERS=a.workers, BENCH_BATCH=kind[len("sluice-b"):])
                    err = open(os.path.join(work, f"{out}.stderr"), "w")
                    p = subprocess.Popen([a.sluice, "run", os.path.join(HERE, "kafka-lua.yaml")], env=env,
                                         stdout=subprocess.DEVNULL, stderr=err)
                    procs = [p]
                else:
                    c = subprocess.Popen(["kcat", "-C", "-b", b, "-t", "bench_in", "-o", "beginning", "-e", "-q",
                                          "-f", "%k\t%s\n"], stdout=subprocess.PIPE)
                    pp = subprocess.Popen(["kcat", "-P", "-b", b, "-t", out, "-K", "\t"], stdin=c.stdout)
                    c.stdout.close()
                    procs = [c, pp]
                SYS[0] = 0.0
                t_first, c_first, t_last = watch(b, out, parts, n, procs, a.timeout)
                if kind.startswith("sluice"):
                    p.send_signal(signal.SIGTERM)
                    cpu = wait4(p)
                    if p.returncode != 0:
                        raise SystemExit(f"sluice exited {p.returncode}; see {err.name}")
                else:
                    cpu = sum(wait4(x) for x in procs)
                total = watermarks(b, out, parts)
                rate = (n - c_first) / (t_last - t_first)
                row = {"round": r, "msg_s": rate, "from_launch_s": t_last - launch, "copy_s": t_last - t_first,
                       "cpu_s": cpu, "sys_s": SYS[0], "out": total}
                results[kind].append(row)
                log(f"round {r} {kind:12}: {rate:10,.0f} msg/s (first out -> last out {t_last - t_first:.2f} s; "
                    f"from launch {t_last - launch:.2f} s), CPU {cpu:.2f} s (system {SYS[0]:.2f}) = {n / cpu:,.0f} msg/CPU-s, out {total}")
                if total != n:
                    log(f"  note: {out} holds {total} messages for {n} in")
        sample = subprocess.run(["kcat", "-C", "-b", b, "-t", f"out_{kinds[0].replace('-', '_')}_0", "-c", "1", "-e", "-q"],
                                capture_output=True, text=True).stdout.strip()
        if '"pipeline":"sluice"' not in sample:
            raise SystemExit(f"the UDF's field is missing from sluice's output: {sample}")
    finally:
        dev.stop()

    med = {k: statistics.median(x["msg_s"] for x in v) for k, v in results.items()}
    cpu = {k: statistics.median(n / x["cpu_s"] for x in v) for k, v in results.items()}
    launch = {k: statistics.median(x["from_launch_s"] for x in v) for k, v in results.items()}
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {model}, Linux {platform.release()}")
    print(f"messages: {n} ({size / n:.0f} B each) over {parts} partitions, rounds: {a.rounds}, sluice workers: {a.workers}")
    for k in kinds:
        rates = ", ".join(f"{x['msg_s']:,.0f}" for x in results[k])
        print(f"{k:12}: median {med[k]:,.0f} msg/s first out -> last out (runs: {rates}); "
              f"{launch[k]:.2f} s from launch; {cpu[k]:,.0f} msg per CPU-second")
    for k in kinds[:-1]:
        print(f"ratio {k} / kcat pipe: {med[k] / med['kcat']:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
