#!/usr/bin/env python3
"""A small geo service for the enrichment example, its tests and its benchmark.

GET  /geo/KEY   -> 200 {"key": KEY, "region": ..., "currency": ...}; 404 for keys starting with "unknown"
POST /control   -> JSON {"latency_ms": 20, "mode": "ok"|"503"|"500"|"429"|"400"|"reset", "count": N,
                         "retry_after": SECONDS}: answer the next N requests (all if N is absent) with
                         that mode after the latency; "reset" closes the connection without an answer;
                         {"hold": true} holds every request until {"hold": false}
GET  /stats     -> {"requests": N, "keys": {KEY: N}, "starts": [monotonic seconds, ...], "max_in_flight": N}
POST /stats/reset

Prints "listening on http://127.0.0.1:PORT" once it accepts connections (--port 0 = any free port).
"""
import argparse
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

REGIONS = {
    "US": ("NA", "USD"), "CA": ("NA", "CAD"), "MX": ("LATAM", "MXN"), "BR": ("LATAM", "BRL"),
    "GB": ("EMEA", "GBP"), "DE": ("EMEA", "EUR"), "FR": ("EMEA", "EUR"),
    "IN": ("APAC", "INR"), "JP": ("APAC", "JPY"), "KR": ("APAC", "KRW"),
}


def row(key):
    """What /geo/KEY answers (the tests compute their expectations with this too)."""
    region, currency = REGIONS.get(key, ("OTHER", "USD"))
    return {"key": key, "region": region, "currency": currency}


class State:
    def __init__(self, latency_ms):
        self.lock = threading.Lock()
        self.latency_ms = latency_ms
        self.mode = "ok"
        self.count = None
        self.retry_after = None
        self.released = threading.Event()
        self.released.set()
        self.reset_stats()

    def reset_stats(self):
        self.requests = 0
        self.keys = {}
        self.starts = []
        self.in_flight = 0
        self.max_in_flight = 0


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16   # one write per response (headers and body together): no Nagle / delayed-ACK stalls

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def answer(self, status, body, headers=()):
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/stats":
                with state.lock:
                    body = {"requests": state.requests, "keys": state.keys, "starts": state.starts,
                            "max_in_flight": state.max_in_flight}
                return self.answer(200, body)
            if not self.path.startswith("/geo/"):
                return self.answer(404, {"error": "not found"})
            key = unquote(self.path[len("/geo/"):])
            with state.lock:
                state.requests += 1
                state.keys[key] = state.keys.get(key, 0) + 1
                state.starts.append(time.monotonic())
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                latency = state.latency_ms
                mode = state.mode
                retry_after = state.retry_after
                if state.count is not None:
                    state.count -= 1
                    if state.count <= 0:
                        state.mode, state.count = "ok", None
            try:
                state.released.wait(120)
                if latency:
                    time.sleep(latency / 1000)
                if mode == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if mode in ("503", "500", "429", "400"):
                    headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
                    return self.answer(int(mode), {"error": "injected " + mode}, headers)
                if key.startswith("unknown"):
                    return self.answer(404, {"error": "no such key"})
                return self.answer(200, row(key))
            finally:
                with state.lock:
                    state.in_flight -= 1

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                if self.path == "/stats/reset":
                    state.reset_stats()
                elif self.path == "/control" and "hold" in body:
                    if body["hold"]:
                        state.released.clear()
                    else:
                        state.released.set()
                elif self.path == "/control":
                    state.latency_ms = body.get("latency_ms", state.latency_ms)
                    state.mode = body.get("mode", "ok")
                    state.count = body.get("count")
                    state.retry_after = body.get("retry_after")
                else:
                    return self.answer(404, {"error": "not found"})
            self.answer(200, {"ok": True})

    return Handler


class Server(ThreadingHTTPServer):
    request_queue_size = 1024   # the listen backlog: a burst of connects must not wait for SYN retransmits
    daemon_threads = True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--latency-ms", type=float, default=0)
    args = p.parse_args()
    # A parent (a test runner) may have blocked these; the service must still stop on them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", args.port), make_handler(State(args.latency_ms)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
