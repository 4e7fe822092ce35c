/**
 * The queue contract through the gateway's outbox (src/queue/outbox.ts) in front of Redis: with
 * Redis up the decorator must keep every guarantee of the queue it wraps. Its behaviour while
 * Redis is away is tested against real processes in test/e2e/outbox.redis.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createRedisQueue, withOutbox } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { eventually, newTask, testClock } from './harness.js';
import { runQueueContract } from './queue.contract.js';

let server: TestRedis;
let admin: Redis;
before(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});
after(async () => {
  admin?.disconnect();
  await server?.stop();
});

runQueueContract('redis behind the outbox', async (options) => {
  await admin.flushall();
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-outbox-'));
  const clock = testClock();
  const opened: DurableQueue[] = [];
  return {
    clock,
    serverTime: true,
    open() {
      const inner = createRedisQueue(server.url, { resultTtlS: 3600, maxDeliveries: 5, ...options, now: clock.now });
      const queue = withOutbox(inner, { dir, max: 1000, keyTtlMs: 3_600_000, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('when Redis is away, then accepted tasks are journaled; when it returns, then they reach it once each, in the order accepted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-outbox-'));
  const queue = withOutbox(createRedisQueue(server.url, { resultTtlS: 3600, maxDeliveries: 5 }), { dir, max: 1000, keyTtlMs: 3_600_000 });
  try {
    await admin.flushall();
    await queue.ping();
    await server.kill();
    const tasks = Array.from({ length: 10 }, () => newTask('add'));
    for (const task of tasks) assert.equal((await queue.enqueue(task)).status, 'queued');
    await queue.enqueue(tasks[3]!); // a retried request: journaled once
    assert.equal(queue.outbox?.().depth, 10);
    await server.restart();
    await eventually(() => (queue.outbox?.().depth === 0 ? true : undefined), 'the journal to be forwarded', 20_000);
    const claimed = await queue.claim('add', 'c1', 100, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => t.id), tasks.map((t) => t.id));
  } finally {
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('when a key held in Redis is retried while Redis is away, then the outbox answers its first holder and never takes it for a new request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-outbox-'));
  const queue = withOutbox(createRedisQueue(server.url, { resultTtlS: 3600, maxDeliveries: 5 }), { dir, max: 1000, keyTtlMs: 3_600_000 });
  try {
    await server.restart();
    await admin.flushall();
    assert.equal(await queue.reserveKey('alice', 'k1', 'first'), undefined);
    await server.kill();
    assert.equal(await queue.reserveKey('alice', 'k1', 'second'), 'first', 'the retry replays the first holder');
    assert.equal(await queue.reserveKey('alice', 'k2', 'new'), undefined, 'a key never seen is new, and journaled');
    assert.equal(await queue.reserveKey('alice', 'k2', 'again'), 'new');
  } finally {
    await server.restart();
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
