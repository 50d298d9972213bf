#!/usr/bin/env python3
"""Checkpoint costs (issue 10 deliverable 6), run by bench/checkpoint/run.sh.

1. Join throughput with checkpoints every 1 s vs off: bench/join/join.yaml and
   bench/checkpoint/join.yaml on bench/join's gen_conversions.py data, rounds interleaved, medians
   of wall time and CPU seconds; output counts checked against the reference; the checkpointed
   runs' checkpoint figures (count, state bytes, start-to-durable time) from the debug log.
2. Checkpoint size and time for N keys (default 1M): bench/checkpoint/keys.yaml (a dedup keeping
   every key) over a followed file of N distinct keys; SIGTERM once all are read takes the
   checkpoint; a restart restores it (time to read and verify the file, and to load the state).
"""
import argparse, json, os, re, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "bench", "out", "checkpoint")


def timed(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.stderr, p.returncode


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--impressions", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=55)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--workers", default="1")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    sys.path.insert(0, os.path.join(ROOT, "bench", "join"))
    import bench as joinbench  # bench/join/bench.py: data and reference
    imp, plays, ref, _ = joinbench.ensure_data(a.impressions, a.seed)
    out = os.path.join(OUT, "join.jsonl")
    ckpt = os.path.join(OUT, "ckpt")
    env = dict(os.environ, BENCH_IMP=imp, BENCH_PLAYS=plays, BENCH_OUTPUT=out, BENCH_WORKERS=a.workers,
               BENCH_CKPT=ckpt, SLUICE_LOG="debug")
    results = {"off": [], "every 1s": []}
    figures = []
    for r in range(a.rounds):
        for variant, spec in (("off", "bench/join/join.yaml"), ("every 1s", "bench/checkpoint/join.yaml")):
            for p in (out,):
                if os.path.exists(p): os.remove(p)
            subprocess.run(["rm", "-rf", ckpt])
            wall, cpu, err, rc = timed([a.sluice, "run", os.path.join(ROOT, spec)], env)
            n = count_lines(out) if os.path.exists(out) else -1
            ok = rc == 0 and n == ref["join_pairs"]
            print(f"round {r + 1} {variant}: {wall:.2f} s wall, {cpu:.2f} CPU-s, {n} pairs {'ok' if ok else 'WRONG (rc %d)' % rc}", file=sys.stderr)
            results[variant].append((wall, cpu))
            if variant != "off":
                for m in re.finditer(r"checkpoint (\d+) written: (\d+) state bytes, ([0-9.]+) ms from start to durable \(encoding the state ([0-9.]+) ms", err):
                    figures.append((int(m[2]), float(m[3]), float(m[4])))
    events = ref["impressions"] + ref["plays"]
    print("\n## Join throughput, checkpoints every 1 s vs off", flush=True)
    print(f"{events:,} input events, workers {a.workers}, {a.rounds} rounds interleaved, medians")
    for v, xs in results.items():
        wall = statistics.median(x[0] for x in xs); cpu = statistics.median(x[1] for x in xs)
        print(f"- checkpoints {v}: {wall:.2f} s wall ({events / wall / 1000:.0f}k events/s), {cpu:.2f} CPU-s")
    off = statistics.median(x[0] for x in results["off"]); on = statistics.median(x[0] for x in results["every 1s"])
    print(f"- cost: {100 * (on - off) / off:+.1f}% wall time")
    if figures:
        print(f"- {len(figures)} checkpoints in {a.rounds} runs: state up to {max(f[0] for f in figures) / 1e6:.1f} MB, "
              f"start to durable median {statistics.median(f[1] for f in figures):.0f} ms (max {max(f[1] for f in figures):.0f}), "
              f"encoding median {statistics.median(f[2] for f in figures):.0f} ms (off the stage workers)")

    # N keys
    keys = os.path.join(OUT, f"keys-{a.keys}.jsonl")
    if not os.path.exists(keys):
        with open(keys + ".tmp", "w") as f:
            for i in range(a.keys):
                f.write('{"id":"k%09d","ts":%d}\n' % (i, 1_700_000_000_000 + i))
        os.rename(keys + ".tmp", keys)
    kout = os.path.join(OUT, "keys-out.jsonl")
    kckpt = os.path.join(OUT, "keys-ckpt")
    subprocess.run(["rm", "-rf", kckpt, kout])
    kenv = dict(os.environ, BENCH_KEYS=keys, BENCH_OUTPUT=kout, BENCH_CKPT=kckpt, BENCH_WORKERS=a.workers, SLUICE_LOG="debug")
    spec = os.path.join(ROOT, "bench/checkpoint/keys.yaml")
    p = subprocess.Popen([a.sluice, "run", spec], env=kenv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not (os.path.exists(kout) and count_lines(kout) >= a.keys):
        time.sleep(0.2)
    t = time.monotonic()
    p.terminate()
    err = p.communicate()[1]
    stop = time.monotonic() - t
    m = re.search(r"checkpoint (\d+) written: (\d+) state bytes, ([0-9.]+) ms from start to durable \(encoding the state ([0-9.]+) ms", err)
    size = os.path.getsize(os.path.join(kckpt, sorted(x for x in os.listdir(kckpt) if x.endswith(".sluice"))[-1]))
    print(f"\n## Checkpoint of {a.keys:,} keys (dedup)")
    if m:
        print(f"- checkpoint: {size / 1e6:.1f} MB file ({int(m[2]) / 1e6:.1f} MB state), {float(m[3]):.0f} ms from barrier to durable "
              f"(encoding {float(m[4]):.0f} ms); SIGTERM to exit {stop:.2f} s")
    p = subprocess.Popen([a.sluice, "run", spec], env=kenv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.monotonic()
    restored = None
    lines = []
    for line in p.stderr:
        lines.append(line)
        if "restored" in line and "keys" in line:
            restored = time.monotonic() - t
            break
    p.terminate()
    rest = p.communicate()[1]
    text = "".join(lines) + rest
    r1 = re.search(r"read and verified in (\d+) ms", text)
    r2 = re.findall(r"restored (\d+) keys, (\d+) state bytes in (\d+) ms", text)
    print(f"- restore: file read and verified in {r1[1] if r1 else '?'} ms; state loaded "
          f"{', '.join(f'{k} keys in {ms} ms' for k, _, ms in r2)}; start to restored {restored or 0:.2f} s")


if __name__ == "__main__":
    main()
