#!/usr/bin/env python3
"""Measures a two-server cluster against one server alone, side by side, on this machine.

Starts a private redis-server (persistence off) on a free loopback port, then for each round:
one chat-server alone, one chat-server in a cluster of one (to isolate Redis' cost), and two
clustered chat-servers with chat-bench's clients spread over both (--also). Each runs fanout
(-n 1000 -k 4 -m 1000) and rtt (-n 1000 -k 4 -s 200), the compare.sh scenarios fanout1000 and
rtt1000. Prints the median of each figure over the rounds.

    ulimit -n 20000; python3 scripts/measure/cluster.py [--rounds 3]

Uses target/release/chat-server and chat-bench (cargo build --release first).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "target", "release")
SERVER_ARGS = ["--host", "127.0.0.1", "--port", "0", "--no-web", "--flood-rate", "0",
               "--history-on-join", "0", "--max-per-ip", "0", "--partial-flush-ms", "0"]
FANOUT = ["fanout", "-n", "1000", "-k", "4", "-m", "1000"]
RTT = ["rtt", "-n", "1000", "-k", "4", "-s", "200"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def start_server(extra, log):
    proc = subprocess.Popen([os.path.join(BIN, "chat-server"), *SERVER_ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        sys.exit(f"chat-server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop(procs):
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


def bench(scenario, ports, pids, prefix):
    args = [os.path.join(BIN, "chat-bench"), *scenario, "-p", str(ports[0]), "--json",
            "--prefix", prefix]
    for port in ports[1:]:
        args += ["--also", f"127.0.0.1:{port}"]
    if len(pids) == 1:
        args += ["--server-pid", str(pids[0])]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"chat-bench failed: {out.stderr}")
    return json.loads(out.stdout)


def setups(redis_url):
    yield "alone", [[]]
    yield "cluster of 1", [["--cluster", redis_url]]
    yield "cluster of 2", [["--cluster", redis_url], ["--cluster", redis_url]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    tmp = tempfile.mkdtemp(prefix="chat-cluster-bench-")
    redis, redis_port = start_redis(tmp)
    url = f"redis://127.0.0.1:{redis_port}"
    results = {}
    log = open(os.path.join(tmp, "servers.log"), "w")
    try:
        for round_no in range(rounds):
            for name, servers in setups(url):
                for scenario in (FANOUT, RTT):
                    started = [start_server(extra, log) for extra in servers]
                    procs = [proc for proc, _ in started]
                    try:
                        report = bench(scenario, [port for _, port in started],
                                       [proc.pid for proc in procs], f"r{round_no}")
                    finally:
                        stop(procs)
                    results.setdefault((name, scenario[0]), []).append(report)
                    print(f"round {round_no + 1} {name} {scenario[0]} done", file=sys.stderr)
    finally:
        stop([redis])
    print(f"medians of {rounds} rounds (chat-bench --json keys)")
    for (name, scenario), reports in results.items():
        if scenario == "fanout":
            keys = ["deliveries_per_s", "lost", "orders", "p50_ms", "p99_ms"]
        else:
            keys = ["p50_ms", "p95_ms", "p99_ms", "timeouts"]
            reports = [{**r["steps"][0]["rtt"], "timeouts": r["steps"][0]["timeouts"]}
                       for r in reports]
        figures = []
        for key in keys:
            values = [find(r, key) for r in reports]
            values = [v for v in values if v is not None]
            figures.append(f"{key}={statistics.median(values):.6g}" if values else f"{key}=n/a")
        print(f"{name:14} {scenario:7} " + " ".join(figures))


def find(report, key):
    """A figure anywhere in the report's JSON (top level or one object down)."""
    if key in report and isinstance(report[key], (int, float)):
        return report[key]
    for value in report.values():
        if isinstance(value, dict) and isinstance(value.get(key), (int, float)):
            return value[key]
    return None


if __name__ == "__main__":
    main()
