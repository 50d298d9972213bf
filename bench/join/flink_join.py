"""Flink SQL interval join of bench/join, run by bench/join/bench.py with bench/.venv-flink/bin/python.

usage: flink_join.py IMPRESSIONS PLAYS OUT_DIR
Streaming mode, parallelism 2, filesystem JSON sources with event time from ts (ms) and
WATERMARK et - 10 s; the pairs go to a filesystem JSON sink in OUT_DIR. Prints one JSON line:
{"job_ms": net job runtime, "cpu_s": user+sys of this process and every process under it
(the JVM), "pairs": result rows}.
"""
import json, os, sys

from pyflink.table import EnvironmentSettings, TableEnvironment


def tree_cpu_seconds(root):
    """user+sys of root and its live descendants (their own and their reaped children's), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(pid)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))   # ppid; utime stime cutime cstime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += procs.get(pid, (0, 0))[1]
        todo += [p for p, (ppid, _) in procs.items() if ppid == pid]
    return total / tick


def main():
    imp, plays, out_dir = sys.argv[1:4]
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("parallelism.default", "2")
    conf.set("pipeline.name", "bench-join")
    env.execute_sql(f"""
        CREATE TABLE imp (impression_id STRING, profile_id STRING, title_id BIGINT, ts BIGINT,
            et AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR et AS et - INTERVAL '10' SECOND)
        WITH ('connector' = 'filesystem', 'path' = '{imp}', 'format' = 'json')""")
    env.execute_sql(f"""
        CREATE TABLE plays (event_id STRING, profile_id STRING, title_id BIGINT, ts BIGINT,
            et AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR et AS et - INTERVAL '10' SECOND)
        WITH ('connector' = 'filesystem', 'path' = '{plays}', 'format' = 'json')""")
    env.execute_sql(f"""
        CREATE TABLE pairs (impression_id STRING, event_id STRING, profile_id STRING, title_id BIGINT,
            imp_ts BIGINT, play_ts BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{out_dir}', 'format' = 'json')""")
    result = env.execute_sql("""
        INSERT INTO pairs
        SELECT i.impression_id, p.event_id, p.profile_id, p.title_id, i.ts, p.ts
        FROM plays p, imp i
        WHERE p.profile_id = i.profile_id AND p.title_id = i.title_id
          AND i.et BETWEEN p.et - INTERVAL '1' HOUR AND p.et""")
    job = result.get_job_client().get_job_execution_result().result()
    cpu = tree_cpu_seconds(os.getpid())
    pairs = 0
    for d, _, files in os.walk(out_dir):
        for name in files:
            if not name.startswith("."):
                with open(os.path.join(d, name), "rb") as f:
                    pairs += sum(1 for _ in f)
    print(json.dumps({"job_ms": job.get_net_runtime(), "cpu_s": round(cpu, 2), "pairs": pairs}))


if __name__ == "__main__":
    main()
