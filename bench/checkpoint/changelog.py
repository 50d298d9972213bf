#!/usr/bin/env python3
"""Changelog restore rate (issue 10), run by bench/checkpoint/changelog.sh.

A `sluice dev kafka` broker (its own process) with topic ev (4 partitions) and the changelog topic
bench-changelog-once-changelog (made with the broker's `topic` command: the dev broker does not
serve CreateTopics). N distinct keys are produced with kcat; bench/checkpoint/changelog.yaml (a
dedup keeping every key, checkpoints every 1 s) reads them and writes their state to the
changelog, then stops (SIGTERM). A second start is assigned every partition and reads the
changelog back before processing: the figures are from its log (keys read and the time to read
them from the broker; keys loaded and the time each stage worker took).
"""
import argparse, os, re, signal, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "bench", "out", "changelog")


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--workers", default="2")
    a = ap.parse_args()
    subprocess.run(["rm", "-rf", OUT])
    os.makedirs(OUT)
    broker = subprocess.Popen([a.sluice, "dev", "kafka", "--topic", "ev:4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=open(os.path.join(OUT, "broker.log"), "w"), text=True)
    try:
        bootstrap = broker.stdout.readline().strip()
        broker.stdin.write("topic bench-changelog-once-changelog 4\n"); broker.stdin.flush()
        answer = broker.stdout.readline().strip()
        if answer != "ok":
            sys.exit(f"dev kafka: {answer}")
        lines = "".join(f'k{i}|{{"id":"k{i}","ts":{1_700_000_000_000 + i}}}\n' for i in range(a.keys))
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", "ev", "-K", "|"], input=lines, text=True, check=True)
        env = dict(os.environ, BENCH_BROKERS=bootstrap, BENCH_OUTPUT=os.path.join(OUT, "out.jsonl"),
                   BENCH_CKPT=os.path.join(OUT, "ckpt"), BENCH_WORKERS=a.workers, SLUICE_LOG="debug")
        spec = os.path.join(ROOT, "bench", "checkpoint", "changelog.yaml")

        def start(name):
            log = open(os.path.join(OUT, f"{name}.log"), "w+")
            return subprocess.Popen([a.sluice, "run", spec], env=env, stdout=subprocess.DEVNULL, stderr=log), log

        def text(log):
            log.flush(); log.seek(0); return log.read()

        first, log1 = start("first")
        written = lambda: sum(int(n) for n in re.findall(r"changelog of checkpoint \d+: (\d+) record\(s\) written", text(log1)))
        wait_for(lambda: written() >= a.keys, 300, f"{a.keys} changelog records")
        first.send_signal(signal.SIGTERM)
        if first.wait(60) != 0:
            sys.exit(f"first run exited {first.returncode}: {text(log1)[-2000:]}")
        began = time.monotonic()
        second, log2 = start("second")
        loaded = lambda: sum(int(n) for n in re.findall(r"restored (\d+) keys from the changelog", text(log2)))
        wait_for(lambda: loaded() >= a.keys, 300, "the restore")
        ready = time.monotonic() - began
        second.send_signal(signal.SIGTERM)
        second.wait(60)
        log = text(log2)
        read = re.search(r"changelog: partitions \[[^\]]*\] assigned: (\d+) keys read in (\d+) ms", log)
        workers = [(int(k), int(ms)) for k, ms in re.findall(r"restored (\d+) keys from the changelog in (\d+) ms", log)]
        keys, read_ms = int(read.group(1)), int(read.group(2))
        load_ms = max(ms for _, ms in workers)
        print(f"keys {keys}: changelog read in {read_ms} ms ({keys / max(read_ms, 1) * 1000:,.0f} keys/s), "
              f"loaded by {len(workers)} stage workers in {load_ms} ms (slowest worker), "
              f"start to restored {ready:.2f} s; restore {keys / max(read_ms + load_ms, 1) * 1000:,.0f} keys/s")
    finally:
        broker.kill()
        broker.wait()


if __name__ == "__main__":
    main()
