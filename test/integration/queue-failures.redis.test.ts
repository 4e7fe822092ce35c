/**
 * The Redis queue when Redis itself fails: restarted, crashed, down, hung. Real redis-server
 * processes (AOF on, fsync always, so a crash loses nothing acknowledged); never the one on 6379.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createRedisQueue, startConsumer } from '../../src/queue/index.js';
import type { ClaimedTask, DurableQueue } from '../../src/queue/types.js';
import { silentLogger } from '../../src/shared/logger.js';
import { eventually, newTask } from '../contract/harness.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const options = { resultTtlS: 3600, maxDeliveries: 5, commandTimeoutMs: 500 };
const add = (task: ClaimedTask) => ({ ok: true as const, result: task.num1! + task.num2! });

describe('Redis queue under Redis failures', () => {
  let server: TestRedis;
  let queue: DurableQueue;
  before(async () => {
    server = await startRedis({ appendonly: true, appendfsync: 'always' });
  });
  after(() => server?.stop());
  beforeEach(async () => {
    await queue?.close();
    const admin = new Redis(server.url);
    await admin.flushall();
    admin.disconnect();
    queue = createRedisQueue(server.url, options);
  });
  after(() => queue?.close());

  const up = () => eventually(() => queue.ping().then(() => true, () => undefined), 'the queue to reconnect', 10_000);

  /** Drains `add` with a short lease (entries claimed before a restart come back quickly). */
  async function drain(expected: number): Promise<void> {
    const consumer = startConsumer({ queue, operation: 'add', consumer: 'drainer', handler: add, logger: silentLogger(), leaseMs: 300, blockMs: 100 });
    try {
      await eventually(async () => ((await queue.stats(['add'])).add?.depth === 0 ? true : undefined), `${expected} tasks to drain`, 15_000);
    } finally {
      await consumer.stop();
    }
  }

  async function assertAllDone(tasks: readonly { id: string; num1?: number; num2?: number }[]): Promise<void> {
    for (const task of tasks) {
      const ticket = await queue.getTicket('alice', task.id);
      assert.deepEqual([ticket?.status, ticket?.result], ['done', task.num1! + task.num2!], `ticket ${task.id}`);
    }
  }

  for (const how of ['restarted', 'killed -9 and started again'] as const) {
    test(`when Redis is ${how} between enqueue and drain, then every ticket is still there and done after draining`, async () => {
      const tasks = Array.from({ length: 200 }, () => newTask('add'));
      await Promise.all(tasks.map((t) => queue.enqueue(t)));
      // A consumer took some and never finished them: they must come back after the lease too.
      assert.equal((await queue.claim('add', 'vanished', 50, { leaseMs: 300, blockMs: 0 })).length, 50);
      if (how === 'restarted') await server.restart();
      else {
        await server.kill();
        await server.restart();
      }
      await up();
      assert.equal((await queue.getTicket('alice', tasks[0]!.id))?.status, 'queued');
      await drain(tasks.length);
      await assertAllDone(tasks);
      assert.equal((await queue.takeCompleted('alice', 1000)).length, tasks.length);
    });
  }

  test('when Redis loses its data (no persistence), then claiming creates the group again and new tasks flow', async () => {
    await queue.enqueue(newTask('add'));
    assert.equal((await queue.claim('add', 'c', 10, { leaseMs: 1000, blockMs: 0 })).length, 1);
    const admin = new Redis(server.url);
    await admin.flushall();
    admin.disconnect();
    const task = newTask('add');
    await queue.enqueue(task);
    const claimed = await queue.claim('add', 'c', 10, { leaseMs: 1000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => t.id), [task.id]);
  });

  test('when Redis is down, then enqueue and ping reject with UNAVAILABLE quickly and work again once it is back', async () => {
    await queue.ping();
    await server.kill();
    const started = Date.now();
    await assert.rejects(queue.enqueue(newTask()), { code: 'UNAVAILABLE' });
    await assert.rejects(queue.ping(), { code: 'UNAVAILABLE' });
    await assert.rejects(queue.claim('add', 'c', 10, { leaseMs: 1000, blockMs: 0 }), { code: 'UNAVAILABLE' });
    assert.ok(Date.now() - started < 3000, `rejections took ${Date.now() - started} ms`);
    await server.restart();
    await up();
    const ticket = await queue.enqueue(newTask());
    assert.equal(ticket.status, 'queued');
  });

  test('when Redis hangs, then enqueue rejects with UNAVAILABLE within its command timeout', async () => {
    await queue.ping();
    server.pause();
    try {
      const started = Date.now();
      await assert.rejects(queue.enqueue(newTask()), { code: 'UNAVAILABLE' });
      assert.ok(Date.now() - started < 3000, `rejection took ${Date.now() - started} ms`);
    } finally {
      server.resume();
    }
    await up();
  });

  test('when Redis goes down while a consumer drains, then the consumer keeps trying and finishes after Redis is back', async () => {
    const warnings: string[] = [];
    const logger = silentLogger();
    const watched = Object.assign(Object.create(logger), {
      child: () => watched,
      warn: (_: unknown, message: string) => void warnings.push(message),
    }) as typeof logger;
    const first = Array.from({ length: 100 }, () => newTask('add'));
    await Promise.all(first.map((t) => queue.enqueue(t)));
    const consumer = startConsumer({ queue, operation: 'add', consumer: 'survivor', handler: add, logger: watched, leaseMs: 300, blockMs: 100 });
    try {
      await eventually(async () => ((await queue.stats(['add'])).add?.depth === 0 ? true : undefined), 'the first tasks to drain');
      await server.kill();
      await eventually(async () => (warnings.length > 0 ? true : undefined), 'the consumer to notice');
      await server.restart();
      await up();
      const second = Array.from({ length: 100 }, () => newTask('add'));
      await Promise.all(second.map((t) => queue.enqueue(t)));
      await eventually(async () => ((await queue.stats(['add'])).add?.depth === 0 ? true : undefined), 'the second tasks to drain', 15_000);
      await assertAllDone([...first, ...second]);
    } finally {
      await consumer.stop();
    }
  });
});
