#!/usr/bin/env python3
"""Expected service topology edges for a gen_flows.py file, computed from the file alone.

usage: topology_reference.py FLOWS.jsonl > edges.jsonl

Prints one JSON line per edge, sorted by (src, dst):
  {"src": "app-c", "dst": "app-f", "flows": 1234, "bytes": 5678901, "via": ["lb-0"]}

- An ip belongs to the app whose workloads report it as local_ip.
- Every "out" record of a service (an app not named "lb-*") is one flow of one edge, counted
  with its bytes: its remote ip names a service (a direct call, nothing in "via") or a load
  balancer, which is resolved to the service behind it (the apps its own "out" records go to;
  each gen_flows.py LB fronts exactly one).
- Records of load balancers and "in" records only resolve and confirm: the script checks that
  every flow is reported by both ends (same ip pair, same bytes), and fails otherwise.
"""
import collections, json, sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    owner, records = {}, []
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            records.append(r)
            if owner.setdefault(r["local_ip"], r["app"]) != r["app"]:
                sys.exit(f"ip {r['local_ip']} reported by two apps")
    is_lb = lambda app: app.startswith("lb-")

    behind = collections.defaultdict(set)          # LB app -> service apps it forwards to
    ends = collections.Counter()                   # (from ip, to ip, bytes): out records minus in records
    for r in records:
        if r["direction"] == "out":
            ends[(r["local_ip"], r["remote_ip"], r["bytes"])] += 1
            if is_lb(r["app"]):
                behind[r["app"]].add(owner[r["remote_ip"]])
        else:
            ends[(r["remote_ip"], r["local_ip"], r["bytes"])] -= 1
    unmatched = sum(abs(v) for v in ends.values())
    if unmatched:
        sys.exit(f"{unmatched} flow records have no counterpart at the other end")

    edges = {}
    for r in records:
        if r["direction"] != "out" or is_lb(r["app"]):
            continue
        dst, via = owner[r["remote_ip"]], None
        if is_lb(dst):
            if len(behind[dst]) != 1:
                sys.exit(f"{dst} forwards to {sorted(behind[dst])}, expected one service")
            via, dst = dst, next(iter(behind[dst]))
        e = edges.setdefault((r["app"], dst), {"src": r["app"], "dst": dst, "flows": 0, "bytes": 0, "via": set()})
        e["flows"] += 1
        e["bytes"] += r["bytes"]
        if via:
            e["via"].add(via)
    for key in sorted(edges):
        e = edges[key]
        e["via"] = sorted(e["via"])
        print(json.dumps(e, separators=(",", ":")))


if __name__ == "__main__":
    main()
