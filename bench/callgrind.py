#!/usr/bin/env python3
"""W1 in instructions: every variant of bench/run.py (sluice Lua UDFs, sluice declarative, jq,
Lua 5.4 + lua-cjson) under `valgrind --tool=callgrind`, on N events and on no events, so
start-up is subtracted. Instruction counts do not move with the load of a shared machine, so
this is how a change to the event path is proven; bench/run.sh gives the times.

Each variant's output is checked against jq's. Sluice runs a stripped copy of the binary
(valgrind 3.19 cannot read the DWARF 5 of Swift's toolchain).
usage: bench/callgrind.py [--events N]      (default 50,000; needs valgrind)
"""
import argparse, os, re, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, BENCH)
from run import JQ_FILTER, ensure_input  # noqa: E402

SLUICE = os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build/release/sluice"))


def instructions(cmd, stdin_path, env, out_path):
    """Instructions the command executes (all threads), its stdout written to out_path."""
    with tempfile.NamedTemporaryFile(suffix=".cg") as cg, open(stdin_path, "rb") as fin, open(out_path, "wb") as fout:
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg.name}"] + cmd,
                           stdin=fin, stdout=fout, stderr=subprocess.PIPE, env=env, check=True)
    m = re.search(rb"refs:\s+([\d,]+)", r.stderr)
    if not m:
        sys.exit(f"no instruction count from valgrind for {cmd}:\n{r.stderr.decode(errors='replace')[-2000:]}")
    return int(m.group(1).replace(b",", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt install valgrind)")
    work = tempfile.mkdtemp(prefix="sluice-cg-")
    full = ensure_input(1_000_000)
    data = os.path.join(work, "in.jsonl")
    with open(full, "rb") as f, open(data, "wb") as out:
        for i, line in enumerate(f):
            if i == args.events:
                break
            out.write(line)
    empty = os.path.join(work, "empty.jsonl")
    open(empty, "wb").close()
    binary = os.path.join(work, "sluice")
    shutil.copy(SLUICE, binary)
    subprocess.run(["strip", binary], check=True)

    def sluice(spec):
        def run(src, out):
            if os.path.exists(out):
                os.remove(out)
            env = dict(os.environ, BENCH_INPUT=src, BENCH_OUTPUT=out, BENCH_WORKERS="1")
            n = instructions([binary, "run", "-q", os.path.join(BENCH, spec)], empty, env, os.devnull)
            return n, out
        return run

    def piped(cmd):
        def run(src, out):
            return instructions(cmd, src, None, out), out
        return run

    variants = [
        ("jq 1.6", piped(["jq", "-c", JQ_FILTER])),
        ("lua5.4 + lua-cjson", piped(["lua5.4", os.path.join(BENCH, "peers/w1_cjson.lua")])),
        ("sluice W1 Lua UDFs", sluice("w1-lua.yaml")),
        ("sluice W1 declarative", sluice("w1-declarative.yaml")),
    ]
    per_event = {}
    outputs = {}
    for name, run in variants:
        start, _ = run(empty, os.path.join(work, "empty.out"))
        total, out = run(data, os.path.join(work, name.replace(" ", "_") + ".out"))
        per_event[name] = (total - start) / args.events
        with open(out, "rb") as f:
            outputs[name] = f.read().count(b"\n")
        print(f"{name}: {total:,} instructions, {start:,} of them start-up", file=sys.stderr)
    shutil.rmtree(work)
    print(f"W1 on {args.events:,} events, instructions per event (callgrind, start-up subtracted)")
    print(f"{'variant':28} {'instr/event':>12} {'out':>8} {'x jq':>6} {'x cjson':>8}")
    for name, _ in variants:
        ok = "" if outputs[name] == outputs["jq 1.6"] else "  OUTPUT COUNT DIFFERS FROM jq"
        print(f"{name:28} {per_event[name]:12,.0f} {outputs[name]:8,} {per_event['jq 1.6'] / per_event[name]:6.1f} "
              f"{per_event['lua5.4 + lua-cjson'] / per_event[name]:8.2f}{ok}")


if __name__ == "__main__":
    main()
