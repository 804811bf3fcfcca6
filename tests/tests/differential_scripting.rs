//! Differential test of scripting: the same scripts (conversions both ways, errors with their
//! script name and line, writes, the embedded libraries, SCRIPT and FUNCTION commands) go to a
//! real `redis-server` (7.0.15 here and in CI) and to kvtier, in RESP2 and RESP3, with the
//! default cache and a tiny one (values go through the disk store); every reply must be the
//! same bytes. Without a redis-server on `PATH` the test prints why and checks nothing.

use kvtier_tests::{RedisServer, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

/// Setup commands run before the cases (same data on both servers).
const SETUP: &[&[&str]] = &[
    &["SET", "s", "str"],
    &["HSET", "h", "f", "v"],
    &["SADD", "st", "m"],
    &["ZADD", "z", "1.5", "a"],
];

const CASES: &[&[&str]] = &[
    &["EVAL", "return x", "0"],
    &["EVAL", "return redis.call('incr','s')", "0"],
    &["EVAL", "local ok, e = pcall(redis.call, 'incr', 's') return e", "0"],
    &["EVAL", "local ok, e = pcall(redis.call, 'incr', 's') return type(e)", "0"],
    &["EVAL", "local ok, e = pcall(error, 'x') return {type(e), e}", "0"],
    &["EVAL", "return redis.pcall('incr','s')", "0"],
    &["EVAL", "local r = redis.pcall('incr','s') return {type(r), r.err}", "0"],
    &["EVAL", "error('boom')", "0"],
    &["EVAL", "error({err='MY custom'})", "0"],
    &["EVAL", "return {err='x y'}", "0"],
    &["EVAL", "return redis.call('nosuch')", "0"],
    &["EVAL", "return redis.call()", "0"],
    &["EVAL", "return 3.99", "0"],
    &["EVAL", "return -3.99", "0"],
    &["EVAL", "return {1,2,nil,4}", "0"],
    &["EVAL", "return {true,false}", "0"],
    &["EVAL", "x = 1", "0"],
    &["EVAL", "return print", "0"],
    &["EVAL", "return os", "0"],
    &["EVAL", "return redis.call('get')", "0"],
    &["EVAL", "syntax error here", "0"],
    &["EVAL", "return redis.error_reply('My Error')", "0"],
    &["EVAL", "return redis.status_reply('FINE')", "0"],
    &["EVAL", "return {ok='x'}", "0"],
    &["EVAL", "return {err='-x'}", "0"],
    &["EVAL", "return 'abc'", "0"],
    &["EVAL", "return nil", "0"],
    &["EVAL", "return true", "0"],
    &["EVAL", "return false", "0"],
    &["EVAL", "return {}", "0"],
    &["EVAL", "return {1,{2,{3}}}", "0"],
    &["EVAL", "return redis.sha1hex('')", "0"],
    &["EVAL", "return redis.call('ping')", "0"],
    &["EVAL", "return redis.call('set','a','b')", "0"],
    &["EVAL", "return redis.call('get','nokey')", "0"],
    &["EVAL", "return {redis.call('get','nokey'), 5}", "0"],
    &["EVAL", "return redis.call('multi')", "0"],
    &["EVAL", "return redis.call('blpop','l',0)", "0"],
    &["EVAL", "return redis.call('eval','return 1',0)", "0"],
    &["EVAL", "return redis.replicate_commands()", "0"],
    &["EVAL", "return redis.set_repl(redis.REPL_ALL)", "0"],
    &["EVAL", "return redis.breakpoint", "0"],
    &["EVAL", "return loadstring", "0"],
    &["EVAL", "return dofile", "0"],
    &["EVAL", "return _G.x", "0"],
    &["EVAL", "return rawget(_G, 'x')", "0"],
    &["EVAL", "return tostring(1e20)", "0"],
    &["EVAL", "return 1e20", "0"],
    &["EVAL", "return 0/0", "0"],
    &["EVAL", "return {1.5, 2.5}", "0"],
    &["EVAL", "local ok, e = pcall(redis.call, 'incr', 's') error(e)", "0"],
    &["EVAL", "local ok, e = pcall(redis.call, 'incr', 's') error(e, 0)", "0"],
    &["EVAL", "error('boom', 0)", "0"],
    &["EVAL", "error('WRONGTYPE boom', 0)", "0"],
    &["EVAL", "error({err='MY custom'}, 0)", "0"],
    &["EVAL", "error(5)", "0"],
    &["EVAL", "error()", "0"],
    &["EVAL", "error(nil)", "0"],
    &["EVAL", "local t = {} t.x = 1 return t.x", "0"],
    &["EVAL", "local x = 1", "0"],
    &["EVAL", "redis.call('incr','s')", "0"],
    &["EVAL", "return redis.call('get', {})", "0"],
    &["EVAL", "return redis.call('get', 1.5)", "0"],
    &["EVAL", "return redis.call('set', 'n', 1.5)", "0"],
    &["EVAL", "return redis.call('set', 'n', true)", "0"],
    &["EVAL", "return redis.setresp(3)", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('hgetall','nokey')", "0"],
    &["EVAL", "return redis.setresp(4)", "0"],
    &["EVAL", "return redis.call('SET', 'a')", "0"],
    &["EVAL", "return {1, 'a', {ok='x'}, {err='e'}}", "0"],
    &["EVAL", "return {ok=5}", "0"],
    &["EVAL", "return {err=5}", "0"],
    &["EVAL", "return unpack({1,2})", "0"],
    &["EVAL", "return type(math)", "0"],
    &["EVAL", "return KEYS[1]", "0"],
    &["EVAL", "return #ARGV", "0"],
    &["EVAL", "return redis.call('get',KEYS[1])", "0"],
    &["EVAL", "local ok,e = pcall(error, {err='x'}) return type(e)", "0"],
    &["EVAL", "local ok,e = xpcall(function() return redis.call('incr','s') end, function(m) return type(m) end) return e", "0"],
    &["EVAL", "local ok,e = pcall(redis.call, 'nosuchcmd') return e", "0"],
    &["EVAL", "return {pcall(redis.call, 'incr', 's')}", "0"],
    &["EVAL", "return redis.pcall('nosuchcmd')", "0"],
    &["EVAL", "return redis.pcall()", "0"],
    &["EVAL", "string.x = 1", "0"],
    &["EVAL", "redis.x = 1", "0"],
    &["EVAL", "return _VERSION", "0"],
    &["EVAL", "local ok, e = pcall(function() string.x = 1 end) return e", "0"],
    &["EVAL", "setmetatable(_G, nil)", "0"],
    &["EVAL", "return redis.call('select', 1)", "0"],
    &["EVAL", "return tostring(math.pi)", "0"],
    &["EVAL", "return tostring(1/3)", "0"],
    // A script that writes, then touches another key, declares its keys: kvtier refuses an
    // undeclared key that is only on disk after a write (docs/scripting.md).
    &["EVAL", "redis.call('hset',KEYS[1],'f','v') redis.call('sadd',KEYS[2],'m') return 1", "2", "h", "st"],
    &["EVAL", "redis.setresp(3) local r = redis.call('hgetall','h') return {type(r), r.map and r.map.f}", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('smembers','st')", "0"],
    &["EVAL", "redis.setresp(3) local r = redis.call('smembers','st') return r.set.m", "0"],
    &["EVAL", "redis.setresp(3) local r = redis.call('get','nokey') return type(r)", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('get','nokey')", "0"],
    &["EVAL", "redis.call('zadd','z',1.5,'a') redis.setresp(3) local r = redis.call('zscore','z','a') return {type(r), r.double}", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('zscore','z','a')", "0"],
    &["EVAL", "return {map={a=1,b=2}}", "0"],
    &["EVAL", "return {set={a=true}}", "0"],
    &["EVAL", "return {double=3.5}", "0"],
    &["EVAL", "return {double='3.5'}", "0"],
    &["EVAL", "return {big_number='123'}", "0"],
    &["EVAL", "return {verbatim_string={format='txt', string='hello'}}", "0"],
    &["EVAL", "redis.setresp(3) return true", "0"],
    &["EVAL", "redis.setresp(3) return false", "0"],
    &["EVAL", "redis.setresp(3) return nil", "0"],
    &["EVAL", "return {map={}}", "0"],
    &["EVAL", "return {1,{map={a=1}}}", "0"],
    &["EVAL", "return {double=0/0}", "0"],
    &["EVAL", "return redis.status_reply(5)", "0"],
    &["EVAL", "return cjson.encode({1,2,{a=1}})", "0"],
    &["EVAL", "return bit.band(7,3)", "0"],
    &["EVAL_RO", "return redis.call('set','x','1')", "0"],
    &["EVAL", "return 1", "x"],
    &["EVAL", "return 1", "-1"],
    &["EVAL", "return 1", "2", "a"],
    &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    &["SCRIPT", "LOAD", "return 1"],
    &["EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
    &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "abc"],
    &["SCRIPT", "EXISTS"],
    &["SCRIPT", "KILL"],
    &["SCRIPT", "FLUSH", "bogus"],
    &["SCRIPT", "BOGUS"],
    &["SCRIPT", "LOAD", "return +"],
    &["EVAL", "return +", "0"],
    &["EVAL", "#!lua flags=no-writes\nreturn redis.call('set','x','1')", "0"],
    &["EVAL", "#!lua flags=no-writes,bogus\nreturn 1", "0"],
    &["EVAL", "#!lua2\nreturn 1", "0"],
    &["EVAL", "#!lua foo=bar\nreturn 1", "0"],
    &["EVAL", "#!lua\nreturn x", "0"],
    &["EVAL", "#!lua", "0"],
    &["EVAL", "return {KEYS[1], KEYS[2], ARGV[1]}", "2", "k1", "k2", "a1"],
    &["EVAL", "return cjson.encode({1,2,{a=1}})", "0"],
    &["EVAL", "return cjson.encode({})", "0"],
    &["EVAL", "return cjson.encode({a={}, b='x\"y\n', c=1.5, d=true, e=false})", "0"],
    &["EVAL", "return cjson.encode(1/3)", "0"],
    &["EVAL", "return cjson.encode(1e20)", "0"],
    &["EVAL", "return cjson.encode(100)", "0"],
    &["EVAL", "return cjson.encode('é/\\1')", "0"],
    &["EVAL", "return cjson.encode({[1]=1,[3]=3})", "0"],
    &["EVAL", "return cjson.encode({[1]=1,[2]=2,x=3})", "0"],
    &["EVAL", "return cjson.encode(cjson.null)", "0"],
    &["EVAL", "return cjson.encode({1, cjson.null, 3})", "0"],
    &["EVAL", "return cjson.encode(0/0)", "0"],
    &["EVAL", "return cjson.encode(function() end)", "0"],
    &["EVAL", "return cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\"}').a[3].b == cjson.null", "0"],
    &["EVAL", "return cjson.decode('[1,2,3]')", "0"],
    &["EVAL", "return cjson.decode('\"x\"')", "0"],
    &["EVAL", "return cjson.decode('{\"a\":1.5}').a", "0"],
    &["EVAL", "return cjson.decode('bogus')", "0"],
    &["EVAL", "return cjson.decode('[1,2')", "0"],
    &["EVAL", "return cjson.decode('{\"a\" 1}')", "0"],
    &["EVAL", "return cjson.decode('{1:1}')", "0"],
    &["EVAL", "return cjson.decode('[1,2]x')", "0"],
    &["EVAL", "return cjson.decode('123456789012')", "0"],
    &["EVAL", "return type(cjson.null)", "0"],
    &["EVAL", "return cjson.encode(cjson.decode('{\"a\":{\"b\":[]}}'))", "0"],
    &["EVAL", "return cjson.encode({[10]=1})", "0"],
    &["EVAL", "return cjson.encode({[11]=1})", "0"],
    &["EVAL", "return cjson.encode({['1']=1})", "0"],
    &["EVAL", "return cjson.decode('\"\\\\u00e9\\\n\"')", "0"],
    &["EVAL", "local ok, e = pcall(cjson.decode, 'x') return e", "0"],
    &["EVAL", "return bit.tobit(0xffffffff)", "0"],
    &["EVAL", "return bit.bnot(0)", "0"],
    &["EVAL", "return bit.bor(1,2,4)", "0"],
    &["EVAL", "return bit.bxor(5,3)", "0"],
    &["EVAL", "return bit.lshift(1,31)", "0"],
    &["EVAL", "return bit.rshift(-1, 28)", "0"],
    &["EVAL", "return bit.arshift(-16, 2)", "0"],
    &["EVAL", "return bit.rol(1, 33)", "0"],
    &["EVAL", "return bit.ror(1, 1)", "0"],
    &["EVAL", "return bit.bswap(0x12345678)", "0"],
    &["EVAL", "return bit.tohex(255)", "0"],
    &["EVAL", "return bit.tohex(-1, -4)", "0"],
    &["EVAL", "return bit.tohex(255, 2)", "0"],
    &["EVAL", "return bit.band(2^32+5, 7)", "0"],
    &["EVAL", "return bit.lshift(1.9, 1)", "0"],
    &["EVAL", "return bit.band('x')", "0"],
    &["EVAL", "return cmsgpack.pack(1, 'a', {1,2}, {a=1}, true, nil, 1.5, -1, 300, 70000, 2^40)", "0"],
    &["EVAL", "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1,2}, true, 1.5, -1, 300))}", "0"],
    &["EVAL", "return cmsgpack.unpack(cmsgpack.pack({a=1})).a", "0"],
    &["EVAL", "return cmsgpack.pack({})", "0"],
    &["EVAL", "return cmsgpack.pack(0.1)", "0"],
    &["EVAL", "return cmsgpack.pack(string.rep('x', 40))", "0"],
    &["EVAL", "return cmsgpack.unpack('\\204')", "0"],
    &["EVAL", "return struct.pack('>I2i4B', 258, -1, 7)", "0"],
    &["EVAL", "return {struct.unpack('>I2i4B', struct.pack('>I2i4B', 258, -1, 7))}", "0"],
    &["EVAL", "return struct.size('>I2i4B')", "0"],
    &["EVAL", "return struct.pack('<d', 1.5)", "0"],
    &["EVAL", "return {struct.unpack('s', 'ab\\0cd')}", "0"],
    &["EVAL", "return struct.pack('c3', 'abcdef')", "0"],
    &["EVAL", "return struct.pack('i', 1)", "0"],
    &["EVAL", "return struct.pack('!4bi', 1, 2)", "0"],
    &["EVAL", "return {struct.unpack('>h', '\\255\\254')}", "0"],
    &["EVAL", "return struct.pack('z', 1)", "0"],
    &["FUNCTION", "LOAD", "return 1"],
    &["FUNCTION", "LOAD", "#!lua\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua name=l1\nreturn 1"],
    &["FUNCTION", "LOAD", "#!lua name=l1\nredis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)"],
    &["FUNCTION", "LOAD", "#!lua name=l1\nredis.register_function('f1', function(keys, args) return 1 end)"],
    &["FUNCTION", "LOAD", "#!lua name=l2\nredis.register_function('f1', function(keys, args) return 1 end)"],
    &["FUNCTION", "LOAD", "#!lua name=l2\nredis.register_function{function_name='f2', callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, flags={'no-writes'}, description='d'}"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function{function_name='f3', callback=function() end, flags={'bogus'}}"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function{function_name='f3', callback=function() end, foo=1}"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function('f-3', function() end)"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function('f3')"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function('f3', 5)"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function(5)"],
    &["FUNCTION", "LOAD", "#!lua name=l-3\nredis.register_function('f3', function() end)"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.register_function('f3', function() end) redis.register_function('f3', function() end)"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nredis.call('ping')"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nx = 1"],
    &["FUNCTION", "LOAD", "#!lua name=l3\nreturn +"],
    &["FUNCTION", "LOAD", "#!lua name=l3 foo=bar\nreturn 1"],
    &["FUNCTION", "LOAD", "#!js name=l3\nreturn 1"],
    &["FCALL", "f1", "1", "k", "a"],
    &["FCALL", "f2", "1", "k", "a"],
    &["FCALL_RO", "f1", "1", "k", "a"],
    &["FCALL_RO", "f2", "1", "k", "a"],
    &["FCALL", "nof", "0"],
    &["FCALL", "f1", "x"],
    &["FCALL", "f1", "-1"],
    &["FCALL", "f1", "5"],
    &["FUNCTION", "LOAD", "#!lua name=l4\nredis.register_function('f4', function(k, a) return x end)"],
    &["FCALL", "f4", "0"],
    &["FUNCTION", "LOAD", "#!lua name=l5\nredis.register_function('f5', function(k, a) return redis.call('incr', 'l5') end)"],
    &["SET", "l5", "str"],
    &["FCALL", "f5", "0"],
    &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "l1"],
    &["FUNCTION", "LIST", "LIBRARYNAME", "l2"],
    &["FUNCTION", "LIST", "BOGUS"],
    &["FUNCTION", "KILL"],
    &["FUNCTION", "DELETE", "nolib"],
    &["FUNCTION", "DELETE", "l4"],
    &["FUNCTION", "RESTORE", "bogus"],
    &["FUNCTION", "FLUSH", "bogus"],
    &["FUNCTION", "BOGUS"],
    &["FUNCTION", "LOAD", "REPLACE", "#!lua name=l1\nredis.register_function('f1', function(keys, args) return 2 end)"],
    &["FCALL", "f1", "0"],
    &["FUNCTION", "STATS"],
    &["FUNCTION", "LOAD", "#!lua name=l6\nlocal function f(k, a) return KEYS end\nredis.register_function('f6', f)"],
    &["FCALL", "f6", "0"],
    &["FUNCTION", "LOAD", "#!lua name=l7\nredis.register_function('f7', function(k, a) return redis.setresp(3) end)"],
    &["FCALL", "f7", "0"],
    // math.random is Redis's rand48 (seeded here: the sequence is server-wide).
    &["EVAL", "math.randomseed(42) return {math.random(10), math.random(1, 1000), tostring(math.random())}", "0"],
    &["EVAL", "return math.random(0)", "0"],
    &["EVAL", "return math.random(1, 2, 3)", "0"],
    &["EVAL", "return math.random(5, 1)", "0"],
    // Replies of many commands as Lua values, Lua semantics, errors in nested functions.
    &["RPUSH", "l", "a", "b", "c"],
    &["ZADD", "z", "1", "a", "2.5", "b"],
    &["HSET", "h", "f", "v", "g", "w"],
    &["EVAL", "return redis.call('lrange','l',0,-1)", "0"],
    &["EVAL", "return redis.call('type','l')", "0"],
    &["EVAL", "return redis.call('type','l').ok", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('zrange','z',0,-1,'withscores')", "0"],
    &["EVAL", "return redis.call('zrange','z',0,-1,'withscores')", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('hgetall','h')", "0"],
    &["EVAL", "return redis.call('exists','l','z','nokey')", "0"],
    &["EVAL", "return redis.call('ttl','l')", "0"],
    &["EVAL", "return redis.call('object','encoding','l')", "0"],
    &["EVAL", "local function f() error('inner') end\nlocal function g() f() end\ng()", "0"],
    &["EVAL", "local function f()\n  return redis.call('incr','s')\nend\nreturn f()", "0"],
    &["EVAL", "return tostring({}) ~= nil", "0"],
    &["EVAL", "return string.format('%5.2f|%d|%s', 3.14159, 42, 'x')", "0"],
    &["EVAL", "return {string.byte('abc', 1, 3)}", "0"],
    &["EVAL", "return table.concat({1,2,3}, ',')", "0"],
    &["EVAL", "return #redis.call('lrange','l',0,-1)", "0"],
    &["EVAL", "return redis.call('lpush','l2','x','y')", "0"],
    &["EVAL", "return redis.call('lpop','nokey')", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('lpop','nokey')", "0"],
    &["EVAL", "return redis.call('hmget','h','f','nof')", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('hmget','h','f','nof')", "0"],
    &["EVAL", "return redis.call('incrbyfloat','fl','1.5')", "0"],
    &["EVAL", "return redis.call('expire','s',100)", "0"],
    &["EVAL", "return redis.call('set','s','str')", "0"],
    &["EVAL", "return redis.call('getrange','s',0,1)", "0"],
    &["EVAL", "return redis.call('smembers','nokey')", "0"],
    &["EVAL", "return redis.call('zscore','z','nom')", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('zscore','z','nom')", "0"],
    &["EVAL", "return redis.call('echo','hi')", "0"],
    &["EVAL", "return redis.call('time')[1] ~= nil", "0"],
    &["EVAL", "return redis.call('config','get','maxmemory-policy')", "0"],
    &["EVAL", "return redis.call('sort','l','alpha')", "0"],
    &["EVAL", "return redis.call('publish','ch','m')", "0"],
    &["EVAL", "return redis.call('flushdb')", "0"],
    &["EVAL", "return redis.call('exists','l')", "0"],
    &["EVAL", "return redis.call('watch','x')", "0"],
    &["EVAL", "return redis.pcall('watch','x')", "0"],
    &["EVAL", "return select('#', 1, 2, 3)", "0"],
    &["EVAL", "return tonumber('abc')", "0"],
    &["EVAL", "return 10 % 3", "0"],
    &["EVAL", "return 2^53", "0"],
    &["EVAL", "return -0.5", "0"],
    &["EVAL", "return {1, 2, 3, n=5}", "0"],
    &["EVAL", "return {[1]='a', [2]='b', [4]='d'}", "0"],
    &["EVAL", "local t = {} for i=1,100 do t[i]=i end return #t", "0"],
    &["EVAL", "return redis.call('set', 'k', string.rep('x', 100000)) ", "0"],
    &["EVAL", "return #redis.call('get', 'k')", "0"],
    &["EVAL", "return string.len(redis.sha1hex('abc'))", "0"],
    &["EVAL", "return redis.call('ping', 'hello')", "0"],
    &["EVAL", "return assert(false, 'assertion msg')", "0"],
    &["EVAL", "return assert(false)", "0"],
    &["EVAL", "local x = nil; return x.y", "0"],
    &["EVAL", "return #nil", "0"],
    &["EVAL", "return 1 + {}", "0"],
    &["EVAL", "return ('x'):rep(3)", "0"],
    &["EVAL", "return coroutine.wrap(function() coroutine.yield(5) end)()", "0"],
    &["EVAL", "return rawequal(1, 1)", "0"],
    &["EVAL", "return next({})", "0"],
    &["EVAL", "return unpack({1,2,3})", "0"],
    &["EVAL", "return getmetatable('x').__index == string", "0"],
    &["EVAL", "return load", "0"],
    &["EVAL", "return loadstring('return 1')()", "0"],
];

/// A connection that returns each reply's exact bytes.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let r = BufReader::new(w.try_clone().expect("clone"));
        Raw { w, r }
    }

    fn call(&mut self, args: &[&str]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&req).expect("send");
        let mut out = Vec::new();
        self.read_one(&mut out);
        out
    }

    fn read_one(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.r.read_until(b'\n', out).expect("read");
        let line = String::from_utf8_lossy(&out[start..])
            .trim_end()
            .to_string();
        let (kind, rest) = line.split_at(1);
        let n: i64 = rest.parse().unwrap_or(0);
        match kind {
            "$" | "=" if n >= 0 => {
                let mut b = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut b).expect("read bulk");
                out.extend_from_slice(&b);
            }
            "*" | "~" | ">" => {
                for _ in 0..n.max(0) {
                    self.read_one(out);
                }
            }
            "%" => {
                for _ in 0..n.max(0) * 2 {
                    self.read_one(out);
                }
            }
            _ => {}
        }
    }
}

fn run(port: u16, resp3: bool) -> Vec<(String, Vec<u8>)> {
    let mut c = Raw::connect(port);
    if resp3 {
        c.call(&["HELLO", "3"]);
    }
    c.call(&["FLUSHALL"]);
    c.call(&["FUNCTION", "FLUSH"]);
    c.call(&["SCRIPT", "FLUSH"]);
    for s in SETUP {
        c.call(s);
    }
    CASES
        .iter()
        .map(|args| (args.join(" "), c.call(args)))
        .collect()
}

#[test]
fn scripts_match_redis() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    for small in [false, true] {
        let kv = Server::start(if small { SMALL_CACHE } else { &[] });
        for resp3 in [false, true] {
            let want = run(redis.port, resp3);
            let got = run(kv.port, resp3);
            let mut diffs = Vec::new();
            for ((case, w), (_, g)) in want.iter().zip(&got) {
                if w != g {
                    diffs.push(format!(
                        "{case}\n  redis:  {:?}\n  kvtier: {:?}",
                        String::from_utf8_lossy(w),
                        String::from_utf8_lossy(g)
                    ));
                }
            }
            assert!(
                diffs.is_empty(),
                "small cache {small}, RESP3 {resp3}: {} of {} differ:\n{}",
                diffs.len(),
                CASES.len(),
                diffs.join("\n")
            );
        }
    }
}
