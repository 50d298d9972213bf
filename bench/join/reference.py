#!/usr/bin/env python3
"""Exact answers for bench/join (join.yaml, dedup.yaml, aggregate.yaml), computed in plain Python.

usage: bench/join/reference.py IMPRESSIONS PLAYS [--aggregate-out FILE]

Prints one JSON object: {"join_pairs": N, "dedup_kept": N, "aggregate_rows": N, "impressions": N, "plays": N}.
- join_pairs: (impression L, play R) with the same (profile_id, title_id) and
  R.ts - 1h <= L.ts <= R.ts (SPEC.md join; Flink's BETWEEN is inclusive too).
- dedup_kept: impressions, in file order, that are not within 10 min (inclusive) of the kept
  impression of their (profile_id, title_id); a kept one replaces the previous for its key.
- aggregate_rows: (page, minute) groups of impressions, tumbling [k*60 s, (k+1)*60 s) on ts;
  --aggregate-out writes them as sorted JSON lines {key, window_start, window_end,
  impressions, profiles, top_rank} (the fields of aggregate.yaml) for an exact comparison.
Assumes no event is later than the 10 s lateness (true for gen_conversions.py without --late).
"""
import bisect, collections, json, sys

HOUR, TEN_MIN, MINUTE = 3_600_000, 600_000, 60_000


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def join_pairs(imps, plays):
    times = collections.defaultdict(list)
    for i in imps:
        times[(i["profile_id"], i["title_id"])].append(i["ts"])
    for t in times.values():
        t.sort()
    n = 0
    for p in plays:
        t = times.get((p["profile_id"], p["title_id"]))
        if t:
            n += bisect.bisect_right(t, p["ts"]) - bisect.bisect_left(t, p["ts"] - HOUR)
    return n


def dedup_kept(imps):
    kept, n = {}, 0
    for i in imps:
        key = (i["profile_id"], i["title_id"])
        k = kept.get(key)
        if k is not None and abs(i["ts"] - k) <= TEN_MIN:
            continue
        kept[key] = i["ts"]
        n += 1
    return n


def aggregate(imps):
    groups = {}
    for i in imps:
        start = i["ts"] // MINUTE * MINUTE
        g = groups.setdefault((i["page"], start), {"n": 0, "profiles": set(), "top_rank": None})
        g["n"] += 1
        g["profiles"].add(i["profile_id"])
        g["top_rank"] = i["rank"] if g["top_rank"] is None else min(g["top_rank"], i["rank"])
    return [{"key": page, "window_start": start, "window_end": start + MINUTE, "impressions": g["n"],
             "profiles": len(g["profiles"]), "top_rank": g["top_rank"]}
            for (page, start), g in sorted(groups.items())]


def main():
    args = sys.argv[1:]
    agg_out = None
    if "--aggregate-out" in args:
        k = args.index("--aggregate-out"); agg_out = args[k + 1]; del args[k:k + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    imps, plays = read(args[0]), read(args[1])
    rows = aggregate(imps)
    if agg_out:
        with open(agg_out, "w") as f:
            for r in rows:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(json.dumps({"join_pairs": join_pairs(imps, plays), "dedup_kept": dedup_kept(imps),
                      "aggregate_rows": len(rows), "impressions": len(imps), "plays": len(plays)}))


if __name__ == "__main__":
    main()
