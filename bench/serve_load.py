#!/usr/bin/python3
"""Load test of `vaegan serve` on loopback (`make bench-serve`; never part of `make test`).

Starts `vaegan serve RUN --port 0`, sends REQUESTS decode requests (`/api/runs/0/samples` with
varying seeds, and every tenth an interpolation) from CLIENTS threads, each with its own
connection, and prints one JSON line: requests, errors, p50/p99/max latency in milliseconds,
requests per second, and the server's resident memory (VmRSS) after a warm-up and at the end.

Usage: serve_load.py VAEGAN_BINARY RUN_DIR [--requests 2000] [--clients 4]
"""
import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vaegan")
    ap.add_argument("run")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    server = subprocess.Popen([args.vaegan, "serve", args.run, "--port", "0"], stderr=subprocess.PIPE, text=True)
    port = None
    for line in server.stderr:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        print("vaegan serve did not start", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()  # drain its log

    def request(conn, i):
        if i % 10 == 9:
            body = json.dumps({"a": {"test": i % 16}, "b": {"test": (i + 1) % 16}, "t": (i % 100) / 100, "mode": "slerp"})
            conn.request("POST", "/api/runs/0/interpolate", body, {"Content-Type": "application/json"})
        else:
            conn.request("GET", f"/api/runs/0/samples?seed={i}&n=16")
        r = conn.getresponse()
        data = r.read()
        return r.status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"

    try:
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(20):
            request(warm, i)
        rss_start = rss_mib(server.pid)
        latencies, errors, lock = [], [0], threading.Lock()
        per_client = args.requests // args.clients

        def client(c):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for k in range(per_client):
                t0 = time.perf_counter()
                try:
                    ok = request(conn, c * per_client + k)
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1e3)
                    errors[0] += 0 if ok else 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        latencies.sort()
        pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        print(json.dumps({"bench": "serve_load", "requests": len(latencies), "clients": args.clients,
                          "errors": errors[0], "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": latencies[-1],
                          "requests_per_sec": len(latencies) / seconds, "rss_mib_after_warmup": rss_start,
                          "rss_mib_at_end": rss_mib(server.pid)}))
        return 1 if errors[0] else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
