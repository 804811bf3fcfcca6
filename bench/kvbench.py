"""Helpers shared by the Python benchmarks: a free port, a server started and waited for, and
what /proc says about a process."""

import socket
import subprocess
import time

import redis


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def start(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            r = redis.Redis(port=port)
            r.ping()
            return p, r
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"server did not start: {cmd}")
