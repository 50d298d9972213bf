#!/usr/bin/env python3
"""Keyed join, dedup and tumbling aggregate (BENCHMARKS.md), run by bench/join/run.sh.

Variants, rounds interleaved (A B C D, A B C D, ...), medians:
  flink join      Flink SQL interval join (PyFlink, streaming, parallelism 2), bench/join/flink_join.py
  sluice join     sluice run bench/join/join.yaml       (impressions x plays, 1 h, Lua merge)
  sluice dedup    sluice run bench/join/dedup.yaml      (impressions, 10 min, declarative)
  sluice agg      sluice run bench/join/aggregate.yaml  (impressions per page and minute, declarative)
Per core = input events / (user + sys CPU seconds of the process tree). Every output count is
checked against bench/join/reference.py; a variant that fails (e.g. a sluice without the stateful
runtime) is reported and skipped in later rounds, the others go on.
"""
import argparse, json, os, resource, shutil, socket, statistics, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "join")
DATA = os.path.join(ROOT, "bench", "data")
OUT = os.path.join(ROOT, "bench", "out", "join")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_data(n, seed):
    imp, plays = (os.path.join(DATA, f"{k}-{n}-{seed}.jsonl") for k in ("imp", "plays"))
    if not (os.path.exists(imp) and os.path.exists(plays)):
        os.makedirs(DATA, exist_ok=True)
        log(f"generating gen_conversions.py imp.jsonl plays.jsonl {n} {seed} -> {DATA}")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/gen_conversions.py"),
                        imp + ".tmp", plays + ".tmp", str(n), str(seed)], check=True)
        os.rename(plays + ".tmp", plays); os.rename(imp + ".tmp", imp)
    ref_path, agg_path = os.path.join(DATA, f"reference-{n}-{seed}.json"), os.path.join(DATA, f"aggregate-{n}-{seed}.jsonl")
    if not os.path.exists(ref_path):
        log("computing the reference answers (bench/join/reference.py)")
        out = subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), imp, plays, "--aggregate-out", agg_path],
                             check=True, capture_output=True, text=True).stdout
        with open(ref_path, "w") as f:
            f.write(out)
    with open(ref_path) as f:
        return imp, plays, json.load(f), agg_path


def run(cmd):
    """Runs cmd (Flink's client); returns (cpu seconds of the reaped process tree, wall seconds, stdout, stderr, rc)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, p.stdout, p.stderr, p.returncode


def run_polled(cmd, env, metrics_url):
    """Runs sluice, scraping its /metrics every 0.25 s; returns (cpu s, wall s, stderr, rc, peak RSS MiB,
    the operator figures at the scrape with the most state bytes)."""
    start = time.monotonic()
    err_path = os.path.join(OUT, "sluice.stderr")
    with open(os.devnull, "rb") as null, open(err_path, "w") as err:
        p = subprocess.Popen(cmd, env=env, stdin=null, stdout=subprocess.DEVNULL, stderr=err)
    peak = {}
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)      # not p.poll(): wait4 also gives the child's rusage
        if pid:
            break
        time.sleep(0.25)
        try:
            text = urllib.request.urlopen(metrics_url, timeout=0.5).read().decode()
        except OSError:
            continue
        fig = {}
        for line in text.splitlines():
            for name in ("state_bytes", "held_results", "keys"):
                if line.startswith(f"sluice_operator_{name}{{"):
                    fig[name] = fig.get(name, 0) + float(line.rsplit(" ", 1)[1])
        if fig.get("state_bytes", 0) > peak.get("state_bytes", -1):
            peak = fig
    wall = time.monotonic() - start
    with open(err_path) as f:
        stderr = f.read()
    return ru.ru_utime + ru.ru_stime, wall, stderr, os.waitstatus_to_exitcode(status), ru.ru_maxrss / 1024, peak


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impressions", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=55)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1", help="sluice settings.workers")
    ap.add_argument("--flink-python", default=os.path.join(ROOT, "bench/.venv-flink/bin/python"))
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--no-flink", action="store_true")
    ap.add_argument("--no-sluice", action="store_true")
    args = ap.parse_args()
    imp, plays, ref, agg_ref = ensure_data(args.impressions, args.seed)
    n_imp, n_plays = ref["impressions"], ref["plays"]
    log(f"input: {n_imp:,} impressions, {n_plays:,} plays; reference: {ref}")
    os.makedirs(OUT, exist_ok=True)

    def flink():
        out_dir = os.path.join(OUT, "flink")
        shutil.rmtree(out_dir, ignore_errors=True)
        cpu, wall, stdout, stderr, rc = run([args.flink_python, os.path.join(HERE, "flink_join.py"), imp, plays, out_dir])
        if rc != 0:
            return {"error": (stderr.strip().splitlines() or ["exit %d" % rc])[-1]}
        r = json.loads(stdout.strip().splitlines()[-1])
        # the JVM is not always reaped by the Python client: take the larger of the two CPU figures
        return {"cpu": max(cpu, r["cpu_s"]), "wall": wall, "job": r["job_ms"] / 1000, "out": r["pairs"],
                "ok": r["pairs"] == ref["join_pairs"]}

    def sluice(spec, check):
        def go():
            out = os.path.join(OUT, spec.replace(".yaml", ".jsonl")); dead = out + ".dead"
            for p in (out, dead):
                if os.path.exists(p):
                    os.remove(p)
            port = free_port()
            env = dict(os.environ, BENCH_IMP=imp, BENCH_PLAYS=plays, BENCH_OUTPUT=out, BENCH_DEAD=dead,
                       BENCH_WORKERS=args.workers, BENCH_ADMIN=f"127.0.0.1:{port}")
            cpu, wall, stderr, rc, rss, peak = run_polled([args.sluice, "run", os.path.join(HERE, spec)], env,
                                                          f"http://127.0.0.1:{port}/metrics")
            summary = [l for l in stderr.splitlines() if l.startswith("sluice: ")]
            if rc != 0 or not os.path.exists(out):
                return {"error": (stderr.strip().splitlines() or ["exit %d" % rc])[0][:200]}
            dead_n = count_lines(dead) if os.path.exists(dead) else 0
            return {"cpu": cpu, "wall": wall, "out": count_lines(out), "ok": check(out) and dead_n == 0,
                    "dead": dead_n, "summary": summary[-1] if summary else "", "rss": rss, "peak": peak}
        return go

    def same_rows(out):
        keep = ("key", "window_start", "window_end", "impressions", "profiles", "top_rank")
        with open(out) as f:
            got = sorted(json.dumps({k: json.loads(l).get(k) for k in keep}) for l in f)
        with open(agg_ref) as f:
            want = sorted(json.dumps({k: json.loads(l)[k] for k in keep}) for l in f)
        return got == want

    variants = []   # (name, input events, reference output count, run)
    if not args.no_flink:
        variants.append(("flink SQL interval join, p=2", n_imp + n_plays, ref["join_pairs"], flink))
    if not args.no_sluice:
        if not os.access(args.sluice, os.X_OK):
            log(f"sluice: no binary at {args.sluice}: sluice variants skipped")
        else:
            variants += [
                ("sluice join (Lua merge)", n_imp + n_plays, ref["join_pairs"],
                 sluice("join.yaml", lambda out: count_lines(out) == ref["join_pairs"])),
                ("sluice dedup", n_imp, ref["dedup_kept"], sluice("dedup.yaml", lambda out: count_lines(out) == ref["dedup_kept"])),
                ("sluice tumbling aggregate", n_imp, ref["aggregate_rows"], sluice("aggregate.yaml", same_rows)),
            ]
    results, failed = {name: [] for name, *_ in variants}, {}
    for r in range(args.rounds):
        for name, _, _, go in variants:
            if name in failed:
                continue
            res = go()
            if "error" in res:
                failed[name] = res["error"]
                log(f"round {r + 1}: {name}: FAILED: {res['error']}")
                continue
            results[name].append(res)
            log(f"round {r + 1}: {name}: cpu {res['cpu']:.2f}s wall {res['wall']:.2f}s"
                + (f" job {res['job']:.2f}s" if "job" in res else "") + f" out {res['out']:,}"
                + ("" if res["ok"] else "  OUTPUT DIFFERS FROM THE REFERENCE")
                + (f"  [{res['summary']}]" if res.get("summary") else ""))

    print(f"\nkeyed join / dedup / aggregate on {n_imp:,} impressions + {n_plays:,} plays "
          f"(gen_conversions.py ... {args.impressions} {args.seed}), {args.rounds} interleaved rounds, medians; "
          f"{os.cpu_count()} cores; sluice workers: {args.workers}")
    print(f"{'variant':32} {'input':>10} {'events/s/core':>14} {'events/s wall':>14} {'cpu s':>7} {'wall s':>7} {'out':>9} {'reference':>9}  check")
    per_core, bad = {}, False
    for name, n_in, want, _ in variants:
        if name in failed:
            print(f"{name:32} {n_in:10,}  FAILED: {failed[name]}")
            bad = True
            continue
        rs = results[name]
        cpu, wall = statistics.median(x["cpu"] for x in rs), statistics.median(x["wall"] for x in rs)
        per_core[name] = n_in / cpu
        ok = all(x["ok"] for x in rs)
        bad |= not ok
        extra = f"  job {statistics.median(x['job'] for x in rs):.2f}s = {n_in / statistics.median(x['job'] for x in rs) / 2:,.0f}/core" \
            if "job" in rs[0] else ""
        print(f"{name:32} {n_in:10,} {n_in / cpu:14,.0f} {n_in / wall:14,.0f} {cpu:7.2f} {wall:7.2f} {rs[-1]['out']:9,} {want:9,}  "
              f"{'ok' if ok else 'DIFFERS'}{extra}")
    flink_name, join_name = "flink SQL interval join, p=2", "sluice join (Lua merge)"
    if flink_name in per_core and join_name in per_core:
        print(f"sluice join / Flink SQL, per core: {per_core[join_name] / per_core[flink_name]:.1f}x (target >= 10x)")
    if join_name in failed:
        print("sluice join did not run: the stateful runtime (join/dedup/aggregate) is not in this build yet")
    for name in per_core:
        rs = results[name]
        if "peak" not in rs[0]:
            continue
        pk = max((x["peak"] for x in rs), key=lambda f: f.get("state_bytes", 0))
        if not pk:
            print(f"TODO: {name}: no state figures: no /metrics scrape (every 0.25 s) saw sluice_operator_state_bytes (run too short?)")
            continue
        held = pk.get("held_results", 0) or pk.get("keys", 0)
        what = "held event" if pk.get("held_results", 0) and "join" in name else ("open window" if pk.get("held_results", 0) else "key")
        print(f"{name}: peak state {pk['state_bytes'] / 2**20:.1f} MiB for {held:,.0f} {what}s"
              + (f" = {pk['state_bytes'] / held:.0f} bytes per {what}" if held else "")
              + f" ({pk.get('keys', 0):,.0f} keys); peak RSS {statistics.median(x['rss'] for x in rs):.0f} MiB")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
