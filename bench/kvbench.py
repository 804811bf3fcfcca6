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


def add_dataset_args(ap, backend):
    """The server and dataset options of the cold-read benchmarks."""
    ap.add_argument("--server-bin", required=True)
    ap.add_argument("--backend", default=backend)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--maxmemory", default="32mb")
    ap.add_argument("--batch", type=int, default=100)


def command(args):
    """One command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Raw:
    """A bare RESP connection for the batch forms: the pipeline and the MGET are encoded and
    decoded the same way, so their ratio is the server's (through redis-py, packing 100
    commands costs the client more than one MGET: hot, 0.66x)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def bulk(self):
        line = self.f.readline()
        if line[:1] != b"$":
            raise SystemExit(f"unexpected reply {line!r}")
        n = int(line[1:])
        if n < 0:
            return None
        data = self.f.read(n + 2)
        return data[:-2]

    def get_batch(self, names, mget):
        """The values of `names`, by one MGET or by a pipeline of GETs."""
        if mget:
            self.send(command([b"MGET"] + names))
            return self.array()
        self.send(b"".join(command([b"GET", k]) for k in names))
        return [self.bulk() for _ in names]

    def array(self):
        line = self.f.readline()
        if line[:1] != b"*":
            raise SystemExit(f"unexpected reply {line!r}")
        return [self.bulk() for _ in range(int(line[1:]))]
