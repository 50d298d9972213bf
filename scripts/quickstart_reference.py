#!/usr/bin/env python3
"""The quickstart's expected outputs, computed from its input alone (not by sluice).

usage: quickstart_reference.py data/plays.sample.jsonl OUTDIR

Writes OUTDIR/us_plays.jsonl, OUTDIR/mobile_plays.jsonl and OUTDIR/stdout.jsonl as
pipelines/quickstart.yaml should: keep plays longer than a minute (null duration = 0), project
event_id, profile_id, title_id, ts, country, os (client.os), duration_ms (missing fields omitted),
add region, whole minutes and engagement, then route: country US; os ios/android; minutes >= 118.
Keys are sorted, as sluice writes events a UDF changed.
"""
import json, os, sys

REGION = {"US": "NA", "CA": "NA", "MX": "LATAM", "BR": "LATAM", "GB": "EMEA", "DE": "EMEA",
          "FR": "EMEA", "IN": "APAC", "JP": "APAC", "KR": "APAC"}

def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    sinks = {"us_plays": [], "mobile_plays": [], "stdout": []}
    for line in open(src):
        e = json.loads(line)
        if e.get("event_type") != "play" or (e.get("duration_ms") or 0) <= 60000:
            continue
        p = {}
        for k, path in [("event_id", "event_id"), ("profile_id", "profile_id"), ("title_id", "title_id"), ("ts", "ts"),
                        ("country", "country"), ("os", "client.os"), ("duration_ms", "duration_ms")]:
            v, found = e, True
            for seg in path.split("."):
                found = isinstance(v, dict) and seg in v
                if not found: break
                v = v[seg]
            if found:                       # a missing path is omitted; a null is kept
                p[k] = v
        p["region"] = REGION.get(p.get("country"), "OTHER")
        p["minutes"] = p["duration_ms"] // 60000
        p["engagement"] = "binge" if p["minutes"] >= 90 else "episode" if p["minutes"] >= 20 else "sample"
        text = json.dumps(p, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        if p.get("country") == "US": sinks["us_plays"].append(text)
        if p.get("os") in ("ios", "android"): sinks["mobile_plays"].append(text)
        if p["minutes"] >= 118: sinks["stdout"].append(text)
    for name, lines in sinks.items():
        with open(os.path.join(out, name + ".jsonl"), "w") as f:
            f.write("".join(l + "\n" for l in lines))

if __name__ == "__main__":
    main()
