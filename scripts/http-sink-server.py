#!/usr/bin/env python3
"""A small HTTP server for trying and testing Sluice's `http` sink, with faults on demand.

    scripts/http-sink-server.py [--port 0] [--out FILE]

Prints `listening on http://127.0.0.1:PORT` on its first line of stdout, then serves:

    POST /ingest (any path but /control and /stats)
        stores the body's events (JSON lines, or the elements of a JSON array) and answers
        200, unless a fault is set. Stored events are appended to --out (one per line) if given.
    POST /control   JSON body, every key optional:
        {"status": 503, "retry_after": 1}   answer every ingest with this status (0 = normal);
                                             "retry_after" adds that header (seconds)
        {"body": "text"}                     response body of faulted answers
        {"latency_ms": 20}                   wait this long before answering any ingest
        {"drop": true}                       close ingest connections without an answer (an outage)
        {"reset": true}                      back to normal (no fault, no latency)
    GET /stats
        {"requests": N, "statuses": {"200": n, "503": m}, "events": K, "max_in_flight": M}

Only for loopback use: it binds 127.0.0.1 and stops on SIGTERM/SIGINT.
"""
import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, out):
        self.lock = threading.Lock()
        self.status = 0
        self.retry_after = None
        self.body = "fault injected"
        self.latency = 0.0
        self.drop = False
        self.requests = 0
        self.statuses = {}
        self.events = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.out = open(out, "ab", buffering=0) if out else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.state
        if self.path == "/stats":
            with st.lock:
                doc = {"requests": st.requests, "statuses": st.statuses, "events": st.events,
                       "max_in_flight": st.max_in_flight}
            self._answer(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        else:
            self._answer(404, b"not found")

    def do_POST(self):
        st = self.state
        body = self._read_body()
        if self.path == "/control":
            cmd = json.loads(body or b"{}")
            with st.lock:
                if cmd.get("reset"):
                    st.status, st.retry_after, st.latency, st.drop = 0, None, 0.0, False
                if "status" in cmd:
                    st.status = int(cmd["status"])
                    st.retry_after = cmd.get("retry_after")
                if "body" in cmd:
                    st.body = str(cmd["body"])
                if "latency_ms" in cmd:
                    st.latency = float(cmd["latency_ms"]) / 1000
                if "drop" in cmd:
                    st.drop = bool(cmd["drop"])
            self._answer(200, b"ok")
            return
        with st.lock:
            latency, drop, status, retry_after, fault_body = st.latency, st.drop, st.status, st.retry_after, st.body
            st.requests += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            self._ingest(body, latency, drop, status, retry_after, fault_body)
        finally:
            with st.lock:
                st.in_flight -= 1

    def _ingest(self, body, latency, drop, status, retry_after, fault_body):
        st = self.state
        if latency:
            time.sleep(latency)
        if drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if status and status != 200:
            headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
            with st.lock:
                st.statuses[str(status)] = st.statuses.get(str(status), 0) + 1
            self._answer(status, fault_body.encode(), headers)
            return
        text = body.strip()
        if text.startswith(b"["):
            lines = [json.dumps(e, separators=(",", ":")).encode() for e in json.loads(text)]
        else:
            lines = [l for l in text.split(b"\n") if l.strip()]
        with st.lock:
            st.statuses["200"] = st.statuses.get("200", 0) + 1
            st.events += len(lines)
            if st.out and lines:
                st.out.write(b"\n".join(lines) + b"\n")
        self._answer(200, b"ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", default=None, help="append received events here, one per line")
    args = ap.parse_args()
    Handler.state = State(args.out)
    ThreadingHTTPServer.request_queue_size = 128   # many concurrent clients connect at once
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
