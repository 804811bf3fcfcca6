// ioredis against the real kvtier-server: defineCommand (EVALSHA with a NOSCRIPT fallback to
// EVAL), a script over keys that are only on disk (1 MB cache), pipelines and transactions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import Redis from 'ioredis';

const bin = process.env.KVTIER_SERVER_BIN ??
  join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/kvtier-target'), 'release/kvtier-server');

let server, dir, port, redis;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitReady(p) {
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(p, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('kvtier-server did not start');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kvtier-node-'));
  port = await freePort();
  server = spawn(bin, ['--port', String(port), '--dir', join(dir, 'data'), '--maxmemory', '1mb',
    '--cache-flush-delay', '0'], { stdio: 'ignore' });
  await waitReady(port);
  redis = new Redis({ port, host: '127.0.0.1', lazyConnect: false });
});

after(async () => {
  redis?.disconnect();
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('defineCommand runs a script by EVALSHA, falling back to EVAL once', async () => {
  redis.defineCommand('incrCapped', {
    numberOfKeys: 1,
    lua: `local v = redis.call('incr', KEYS[1])
          if v > tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]); return tonumber(ARGV[1]) end
          return v`,
  });
  await redis.script('FLUSH');
  assert.equal(await redis.incrCapped('capped', 2), 1);
  assert.equal(await redis.incrCapped('capped', 2), 2);
  assert.equal(await redis.incrCapped('capped', 2), 2);
  assert.equal(await redis.get('capped'), '2');
});

test('a defined command over keys that are only on disk sees their values', async () => {
  const n = 1500;
  const value = 'x'.repeat(1000);
  for (let i = 0; i < n; i += 100) {
    const args = [];
    for (let j = i; j < Math.min(n, i + 100); j++) args.push(`cold:${j}`, `${j}:${value}`);
    await redis.mset(...args);
  }
  redis.defineCommand('sumPrefixes', {
    numberOfKeys: 3,
    lua: `local s = 0
          for i = 1, #KEYS do local v = redis.call('get', KEYS[i]); s = s + tonumber(string.match(v, '^(%d+):')) end
          return s`,
  });
  // The first keys were written long ago under a 1 MB cache: they are on disk only.
  assert.equal(await redis.sumPrefixes('cold:0', 'cold:1', 'cold:2'), 3);
  assert.equal(await redis.sumPrefixes('cold:10', 'cold:20', 'cold:30'), 60);
});

test('pipelines and MULTI/EXEC', async () => {
  const res = await redis.pipeline().set('p', '1').incr('p').get('p').exec();
  assert.deepEqual(res.map(([err, v]) => [err, v]), [[null, 'OK'], [null, 2], [null, '2']]);
  const tx = await redis.multi().set('t', 'a').append('t', 'b').get('t').exec();
  assert.deepEqual(tx.map(([, v]) => v), ['OK', 2, 'ab']);
});
