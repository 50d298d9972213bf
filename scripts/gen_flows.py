#!/usr/bin/env python3
"""Synthetic network flow records for the service topology example (deterministic by seed).

usage: gen_flows.py OUT N [SEED]      (N: about N records, rounded up to whole calls; SEED default 7)

The model is the three-stage pipeline of Netflix's network flow logs: each workload reports its
own flows, so a call from app A to app B through a load balancer X shows up as four records, and
the edge A -> B appears in none of them:

  1. A's workload:  direction "out", local_ip = A's ip, remote_ip = X's ip   (A calls the LB)
  2. X's workload:  direction "in",  local_ip = X's ip, remote_ip = A's ip   (the LB sees A)
  3. X's workload:  direction "out", local_ip = X's ip, remote_ip = B's ip   (the LB forwards)
  4. B's workload:  direction "in",  local_ip = B's ip, remote_ip = X's ip   (B sees the LB)

One record per line:

  {"ts": 1700000000123, "workload": "app-c-7f9c", "app": "app-c", "direction": "out",
   "local_ip": "10.1.2.3", "remote_ip": "10.0.0.1", "bytes": 18231}

- ts: event time in ms since the epoch. Records of one call are 0..50 ms apart (A, then X, then
  B); the file is in arrival order, up to 5 s behind event time (flow logs are batched), so ts
  is out of order by up to 5 s.
- workload: the reporting instance, "<app>-<4 hex digits>"; app: its application. Load
  balancers are the apps named "lb-<n>" (workloads "lb-<n>-<hex>"); every other app is a
  service "app-<letter>". An ip belongs to one workload for the whole file (no ip reuse).
- direction: "out" (the workload opened the connection) or "in" (it accepted it).
- bytes: bytes sent over the flow; the LB's forwarded flow (3, 4) carries the request plus a
  small header (same number on both ends of one flow).
- Each load balancer fronts exactly one service app (possibly several of its instances); one
  load balancer, lb-0, gets 100x the calls of each other one: a hot key.
- 15% of calls are direct (no LB): two records, A "out" to B's ip and B "in" from A's ip.

The answer (edges source app -> destination app with flow counts and bytes, counted on the
caller's "out" record) is computed from the file alone by scripts/topology_reference.py.
"""
import heapq, json, random, sys

APPS = [f"app-{c}" for c in "abcdefghij"]
N_LBS = 8
HOT_WEIGHT = 100        # lb-0's share of LB calls relative to each other LB


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_path, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)

    def workloads(app, subnet, index, count):
        return [{"workload": f"{app}-{rnd.getrandbits(16):04x}", "app": app, "ip": f"10.{subnet}.{index}.{k + 1}"}
                for k in range(count)]

    services = {app: workloads(app, 1, i, rnd.randint(2, 6)) for i, app in enumerate(APPS)}
    lbs = [{"app": f"lb-{i}", "nodes": workloads(f"lb-{i}", 0, i, rnd.randint(1, 2)), "backend": rnd.choice(APPS)}
           for i in range(N_LBS)]
    lb_weights = [HOT_WEIGHT] + [1] * (N_LBS - 1)

    pending, seq, written = [], 0, 0      # (arrival, seq, record) waiting for the clock
    out = open(out_path, "w")

    def emit(ts, w, direction, remote_ip, nbytes):
        nonlocal seq
        rec = {"ts": ts, "workload": w["workload"], "app": w["app"], "direction": direction,
               "local_ip": w["ip"], "remote_ip": remote_ip, "bytes": nbytes}
        seq += 1
        heapq.heappush(pending, (ts + rnd.randint(0, 5_000), seq, rec))

    clock, made = 1_700_000_000_000, 0
    while made < n:                       # records made so far: 2 or 4 per call
        clock += rnd.randint(0, 20)
        while pending and pending[0][0] <= clock:
            out.write(json.dumps(heapq.heappop(pending)[2], separators=(",", ":")) + "\n"); written += 1
        nbytes = rnd.randint(200, 50_000)
        if rnd.random() < 0.15:           # direct call between two services
            a, b = rnd.sample(APPS, 2)
            src, dst = rnd.choice(services[a]), rnd.choice(services[b])
            emit(clock, src, "out", dst["ip"], nbytes)
            emit(clock + rnd.randint(0, 5), dst, "in", src["ip"], nbytes)
            made += 2
            continue
        lb = rnd.choices(lbs, lb_weights)[0]
        caller = rnd.choice([a for a in APPS if a != lb["backend"]])
        src, node, dst = rnd.choice(services[caller]), rnd.choice(lb["nodes"]), rnd.choice(services[lb["backend"]])
        t1 = clock + rnd.randint(0, 5); t2 = t1 + rnd.randint(0, 30); t3 = t2 + rnd.randint(0, 15)
        fwd = nbytes + rnd.randint(100, 400)
        emit(clock, src, "out", node["ip"], nbytes)
        emit(t1, node, "in", src["ip"], nbytes)
        emit(t2, node, "out", dst["ip"], fwd)
        emit(t3, dst, "in", node["ip"], fwd)
        made += 4
    while pending:
        out.write(json.dumps(heapq.heappop(pending)[2], separators=(",", ":")) + "\n"); written += 1
    out.close()
    print(f"gen_flows: {written} records -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
