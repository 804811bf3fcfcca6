"""redis-py against a real kvtier-server: the client's handshake and everyday calls must work.

The server binary is `KVTIER_SERVER_BIN`, default `$CARGO_TARGET_DIR/release/kvtier-server`
(`CARGO_TARGET_DIR` defaults to `$HOME/.cache/kvtier-target`). Build it first with
`cargo build --release -p kvtier-server`.

Every test runs twice: with redis-py's default protocol (RESP3 with redis-py 8, RESP2 before)
and with `protocol=2`.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis


def server_binary():
    if os.environ.get("KVTIER_SERVER_BIN"):
        return os.environ["KVTIER_SERVER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "kvtier-target"
    )
    return os.path.join(target, "release", "kvtier-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    binary = server_binary()
    if not os.path.exists(binary):
        pytest.fail(f"{binary} not found: run `cargo build --release -p kvtier-server` first")
    tmp = tempfile.mkdtemp(prefix="kvtier-pytest-")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--dir", os.path.join(tmp, "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 20
        while True:
            if proc.poll() is not None:
                log.flush()
                with open(os.path.join(tmp, "server.log"), "rb") as f:
                    out = f.read().decode(errors="replace")
                pytest.fail(f"kvtier-server exited early ({proc.returncode}): {out}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"kvtier-server did not listen on port {port}")
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=["default", 2], ids=["protocol-default", "protocol-2"])
def r(request, server):
    kwargs = {"host": "127.0.0.1", "port": server, "decode_responses": True}
    if request.param != "default":
        kwargs["protocol"] = request.param
    client = redis.Redis(**kwargs)
    # Each parametrisation gets its own key prefix, so the two runs cannot see each other.
    client.prefix = f"p{request.param}:"
    client.test_kwargs = kwargs
    yield client
    client.close()


def negotiated_protocol(r):
    conn = r.connection_pool.get_connection()
    try:
        conn.connect()
        return int(getattr(conn, "protocol", None) or 2)
    finally:
        r.connection_pool.release(conn)


def test_handshake(r):
    assert r.ping() is True
    proto = negotiated_protocol(r)
    if "protocol" in r.test_kwargs:
        assert proto == r.test_kwargs["protocol"]
    elif int(redis.__version__.split(".")[0]) >= 8:
        # redis-py 8 connects with HELLO 3 unless told otherwise.
        assert proto == 3
    info = r.execute_command("HELLO", str(proto))
    if isinstance(info, list):  # RESP2: a flat field/value list
        info = dict(zip(info[::2], info[1::2]))
    assert int(info["proto"]) == proto


def test_set_get(r):
    k = r.prefix + "str"
    assert r.set(k, "hello") is True
    assert r.get(k) == "hello"
    assert r.set(k, "other", nx=True) is None
    assert r.set(k, "world", xx=True, get=True) == "hello"
    assert r.append(k, "!") == 6
    assert r.strlen(k) == 6
    assert r.getrange(k, 0, 2) == "wor"
    assert r.mset({k + "a": "1", k + "b": "2"}) is True
    assert r.mget([k + "a", k + "b", k + "missing"]) == ["1", "2", None]
    assert r.delete(k, k + "a", k + "b") == 3
    assert r.get(k) is None
    assert r.exists(k) == 0


def test_incr(r):
    k = r.prefix + "counter"
    assert r.incr(k) == 1
    assert r.incrby(k, 10) == 11
    assert r.decr(k) == 10
    assert r.incrbyfloat(k, 0.5) == 10.5
    r.set(k, "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr(k)


def test_pipeline(r):
    k = r.prefix + "pipe"
    p = r.pipeline(transaction=False)
    p.set(k, "1")
    p.incr(k)
    p.get(k)
    p.incr(k + "x")
    p.delete(k)
    assert p.execute() == [True, 2, "2", 1, 1]
    # Errors are returned in place.
    r.set(k, "x")
    p = r.pipeline(transaction=False)
    p.incr(k)
    p.get(k)
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError)
    assert res[1] == "x"


def test_transaction_with_watch(r):
    k = r.prefix + "balance"
    r.set(k, "100")

    def withdraw(pipe):
        balance = int(pipe.get(k))
        pipe.multi()
        pipe.set(k, balance - 30)

    assert r.transaction(withdraw, k) == [True]
    assert r.get(k) == "70"

    # A write by someone else between WATCH and EXEC aborts the transaction.
    other = redis.Redis(**r.test_kwargs)
    with r.pipeline() as pipe:
        pipe.watch(k)
        assert pipe.get(k) == "70"
        other.set(k, "0")
        pipe.multi()
        pipe.set(k, "999")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get(k) == "0"
    other.close()

    # MULTI/EXEC pipeline.
    with r.pipeline(transaction=True) as pipe:
        pipe.incr(k).incr(k).get(k)
        assert pipe.execute() == [1, 2, "2"]


def test_hashes(r):
    k = r.prefix + "hash"
    assert r.hset(k, mapping={"a": "1", "b": "2"}) == 2
    assert r.hset(k, "c", "3") == 1
    assert r.hget(k, "a") == "1"
    assert r.hgetall(k) == {"a": "1", "b": "2", "c": "3"}
    assert r.hincrby(k, "a", 5) == 6
    assert r.hdel(k, "b") == 1
    assert r.hlen(k) == 2
    assert sorted(r.hkeys(k)) == ["a", "c"]
    assert r.hgetall(r.prefix + "nohash") == {}


def test_expire_ttl(r):
    k = r.prefix + "ttl"
    r.set(k, "v")
    assert r.ttl(k) == -1
    assert r.expire(k, 100) is True
    assert 0 < r.ttl(k) <= 100
    assert 0 < r.pttl(k) <= 100_000
    assert r.persist(k) is True
    assert r.ttl(k) == -1
    assert r.ttl(r.prefix + "nokey") == -2
    r.set(k, "v", ex=1000)
    assert 900 < r.ttl(k) <= 1000
    r.set(k, "v", px=1)
    time.sleep(0.05)
    assert r.get(k) is None


def test_lock_acquire_extend_release(r):
    # redis-py's Lock runs Lua scripts (register_script: EVALSHA, falling back to EVAL).
    name = r.prefix + "lock"
    lock = r.lock(name, timeout=10)
    assert lock.acquire(blocking=False) is True
    assert lock.owned() is True
    other = r.lock(name, timeout=10)
    assert other.acquire(blocking=False) is False
    assert lock.extend(20) is True
    assert 10 < r.pttl(name) <= 30000
    assert lock.extend(5, replace_ttl=True) is True
    assert r.pttl(name) <= 5000
    lock.release()
    assert r.exists(name) == 0
    # The release script finds another token: not owned.
    assert other.acquire(blocking=False) is True
    r.set(name, "someone else")
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        other.extend(5)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        other.release()
    r.delete(name)


def test_scripts_and_functions(r):
    k = r.prefix + "scripted"
    incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=[k], args=[5]) == 5
    r.script_flush()
    assert incr_by(keys=[k], args=[2]) == 7
    assert r.eval("return {1, 'two', {ok='x'}}", 0) == [1, "two", "x"]
    with pytest.raises(redis.ResponseError, match="user_script:1"):
        r.eval("return redis.call('incr', KEYS[1], 'extra')", 1, k)
    lib = r.prefix.replace(":", "_") + "lib"
    code = f"#!lua name={lib}\nredis.register_function('{lib}_echo', function(keys, args) return args[1] end)"
    assert r.function_load(code, replace=True) == lib
    assert r.fcall(f"{lib}_echo", 0, "hi") == "hi"
    r.function_delete(lib)


def _wait_for(fn, want, seconds=5.0):
    deadline = time.time() + seconds
    got = fn()
    while got != want and time.time() < deadline:
        time.sleep(0.05)
        got = fn()
    return got


def test_client_side_cache_sees_invalidations(server, monkeypatch):
    # redis-py's client-side cache (RESP3, CLIENT TRACKING ON, invalidation pushes).
    try:
        from redis.cache import CacheConfig
        from redis.connection import CacheProxyConnection
    except ImportError:
        pytest.skip("this redis-py has no client-side cache (needs redis-py >= 5.1)")
    # redis-py enables its cache only for servers that report Redis 7.4 or later; kvtier reports
    # 7.0.15, whose tracking protocol (RESP3 `invalidate` pushes) is the one redis-py uses.
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0", raising=False)
    cached = redis.Redis(
        host="127.0.0.1",
        port=server,
        protocol=3,
        cache_config=CacheConfig(),
        decode_responses=True,
    )
    other = redis.Redis(host="127.0.0.1", port=server, protocol=2, decode_responses=True)
    try:
        k = "csc:key"
        other.set(k, "v1")
        assert cached.get(k) == "v1"
        cache = cached.get_cache()
        assert cache.size == 1
        # Served from the cache now: nothing reaches the server.
        calls = other.info("commandstats")["cmdstat_get"]["calls"]
        assert cached.get(k) == "v1"
        assert other.info("commandstats")["cmdstat_get"]["calls"] == calls
        # Another client changes the key: the invalidation reaches the cache, and the next read
        # goes to the server.
        other.set(k, "v2")
        assert _wait_for(lambda: cached.get(k), "v2") == "v2"
        # A key changed on the server by expiry: invalidated too.
        other.set(k, "v3", px=200)
        assert _wait_for(lambda: cached.get(k), "v3") == "v3"
        assert _wait_for(lambda: cached.get(k), None) is None
        # FLUSHDB empties the whole cache (a null invalidation).
        other.set(k, "v4")
        assert _wait_for(lambda: cached.get(k), "v4") == "v4"
        other.flushdb()
        assert _wait_for(lambda: cached.get(k), None) is None
    finally:
        cached.close()
        other.close()
