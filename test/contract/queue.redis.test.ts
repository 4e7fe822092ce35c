/** The queue contract against Redis Streams, on a private redis-server started for this file. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createRedisQueue, type RedisQueueOptions } from '../../src/queue/index.js';
import { keys } from '../../src/queue/redis-codec.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { eventually, newTask, testClock } from './harness.js';
import { runQueueContract } from './queue.contract.js';

let server: TestRedis;
/** A queue on this file's server with the suite's settings, plus the test's own. */
const openQueue = (options: Partial<RedisQueueOptions> = {}) =>
  createRedisQueue(server.url, { resultTtlS: 3600, maxDeliveries: 5, ...options });
let admin: Redis;
before(async () => {
  server = await startRedis();
  admin = new Redis(server.url, { lazyConnect: true });
  await admin.connect();
});
after(async () => {
  admin?.disconnect();
  await server?.stop();
});

runQueueContract('redis', async (options) => {
  // Our own server, never the one on 6379: wiping it gives every test an empty store.
  await admin.flushall();
  const clock = testClock();
  const opened: DurableQueue[] = [];
  return {
    clock,
    serverTime: true,
    open() {
      const queue = openQueue({ ...options, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
    },
  };
});

test('when a consumer has held nothing for long, then the group forgets it, and never one that holds a task', async () => {
  await admin.flushall();
  // Prune on every claim, and count 300 ms of idleness as long.
  const queue = openQueue({ consumerIdleMs: 300, pruneEveryMs: 0 });
  try {
    const claim = (consumer: string, leaseMs = 60_000) => queue.claim('add', consumer, 1, { leaseMs, blockMs: 0 });
    const consumers = async () =>
      ((await admin.call('XINFO', 'CONSUMERS', keys.stream('add'), keys.group('add'))) as (string | number)[][])
        .map((flat) => ({ name: String(flat[1]), pending: Number(flat[3]), idle: Number(flat[5]) }))
        .sort((a, b) => a.name.localeCompare(b.name));
    const idleBoth = async () => {
      const seen = await consumers();
      return seen.filter((c) => c.name.startsWith('gone-')).every((c) => c.idle > 300) ? seen : undefined;
    };

    await queue.enqueue(newTask('add'));
    await queue.enqueue(newTask('add'));
    const [held] = await claim('gone-holding');
    const [done] = await claim('gone-empty');
    await queue.complete('add', [{ task: done!, outcome: { ok: true, result: 1 } }]);
    assert.ok(held, 'gone-holding claimed a task');
    assert.deepEqual((await consumers()).map((c) => [c.name, c.pending]), [['gone-empty', 0], ['gone-holding', 1]]);

    await eventually(idleBoth, 'both consumers idle for over 300 ms');
    await claim('live');
    // (A read that delivers nothing may not create `live` in the group, so only the others are compared.)
    assert.deepEqual((await consumers()).filter((c) => c.name !== 'live').map((c) => [c.name, c.pending]), [['gone-holding', 1]],
      'the idle consumer that held nothing is gone; the one holding a task stays');

    // Once its lease is over the live consumer reclaims the task; then the holder holds nothing and goes.
    const [reclaimed] = await eventually(async () => {
      const tasks = await claim('live', 100);
      return tasks.length > 0 ? tasks : undefined;
    }, 'live to reclaim the task of gone-holding');
    assert.equal(reclaimed!.id, held!.id);
    await eventually(async () => ((await consumers()).find((c) => c.name === 'gone-holding')!.idle > 300 ? true : undefined), 'gone-holding idle');
    await claim('live');
    assert.deepEqual((await consumers()).map((c) => [c.name, c.pending]), [['live', 1]]);
  } finally {
    await queue.close();
  }
});

test('when Redis has lost the stream and its group, then pruning is skipped and the claim still gets the new task', async () => {
  await admin.flushall();
  const queue = openQueue({ consumerIdleMs: 0, pruneEveryMs: 0 });
  try {
    const claimOne = () => queue.claim('add', 'c1', 1, { leaseMs: 60_000, blockMs: 0 });
    await queue.enqueue(newTask('add'));
    assert.equal((await claimOne()).length, 1);
    await admin.flushall(); // as a restart without persistence would
    assert.deepEqual(await claimOne(), [], 'a claim with no stream at all finds nothing, and does not fail');
    const task = newTask('add');
    await queue.enqueue(task);
    assert.deepEqual((await claimOne()).map((t) => t.id), [task.id]);
  } finally {
    await queue.close();
  }
});

test('when stream entries hold JSON that is not a task (no object, no string id), then each is dead-lettered in the same claim that returns the good ones', async () => {
  await admin.flushall();
  const queue = openQueue();
  try {
    const garbage = ['[1,2]', '"text"', '{"id":5}', 'null'];
    const bad = garbage.map(() => newTask('add'));
    for (const [i, task] of bad.entries()) {
      await admin.hset(`calcmesh:ticket:${task.id}`, 'id', task.id, 'client', 'alice', 'status', 'queued', 'operation', 'add', 'createdAt', String(Date.now()));
      await admin.xadd(keys.stream('add'), '*', 'id', task.id, 't', garbage[i]!, 'at', String(Date.now()));
    }
    const good = [newTask('add'), newTask('add')];
    for (const task of good) await queue.enqueue(task);
    const claimed = await queue.claim('add', 'c1', 3, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => t.id), good.map((t) => t.id));
    for (const task of bad) {
      const ticket = await queue.getTicket('alice', task.id);
      assert.deepEqual([ticket?.status, ticket?.error?.code], ['failed', 'DEAD_LETTER'], task.id);
    }
    assert.equal((await queue.stats(['add'])).add?.deadLetters, garbage.length);
    assert.equal((await queue.stats(['add'])).add?.depth, 2, 'only the two claimed entries are left in the stream');
  } finally {
    await queue.close();
  }
});

test('when a stream entry holds a task that cannot be decoded, then it is dead-lettered and the claims of its operation keep working', async () => {
  await admin.flushall();
  const queue = openQueue();
  try {
    const bad = newTask('add');
    await queue.enqueue(bad);
    // Its entry replaced by one whose task JSON is garbage (a foreign writer, a corrupted restore).
    const entryId = (await admin.xrange(keys.stream('add'), '-', '+'))[0]![0];
    await admin.xdel(keys.stream('add'), entryId);
    await admin.xadd(keys.stream('add'), '*', 'id', bad.id, 't', '{"id": not json', 'at', String(Date.now()));
    const good = newTask('add');
    await queue.enqueue(good);
    const claimed = await queue.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => t.id), [good.id]);
    const ticket = await queue.getTicket('alice', bad.id);
    assert.deepEqual([ticket?.status, ticket?.error?.code], ['failed', 'DEAD_LETTER']);
    assert.equal((await queue.stats(['add'])).add?.deadLetters, 1);
  } finally {
    await queue.close();
  }
});

test('when claims come between housekeeping passes, then new entries are read without the script and an undecodable one is still dead-lettered in that claim', async () => {
  await admin.flushall();
  // No second pass of claim.lua for a minute: every claim after the first reads with XREADGROUP.
  let clock = 1_000; // the time claim.lua records as the last claim
  const queue = openQueue({ sweepEveryMs: 60_000, now: () => clock });
  try {
    assert.deepEqual(await queue.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 0 }), [], 'the first claim (a pass of the script) finds nothing');
    assert.equal(await admin.get(keys.lastClaim('add')), '1000');
    clock = 2_000;
    const bad = newTask('add');
    await admin.hset(`calcmesh:ticket:${bad.id}`, 'id', bad.id, 'client', 'alice', 'status', 'queued', 'operation', 'add', 'createdAt', String(Date.now()));
    const good = [newTask('add'), newTask('add')];
    await queue.enqueue(good[0]!);
    await admin.xadd(keys.stream('add'), '*', 'id', bad.id, 't', '{"id": not json', 'at', String(Date.now()));
    await queue.enqueue(good[1]!);
    const claimed = await queue.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => [t.id, t.deliveries]), good.map((t) => [t.id, 1]));
    const ticket = await queue.getTicket('alice', bad.id);
    assert.deepEqual([ticket?.status, ticket?.error?.code], ['failed', 'DEAD_LETTER']);
    const stats = (await queue.stats(['add'])).add!;
    assert.deepEqual([stats.deadLetters, stats.depth, stats.inFlight], [1, 2, 2], 'the bad entry left the stream and the group; the good ones are held');
    assert.equal(await admin.get(keys.lastClaim('add')), '2000', 'dead-lettering went through the script, which recorded the claim');
  } finally {
    await queue.close();
  }
});

test('when a plain read between housekeeping passes finds nothing new, then the claim goes on to the script: a retry that is due is delivered at once', async () => {
  await admin.flushall();
  const queue = openQueue({ sweepEveryMs: 60_000 });
  try {
    const task = newTask('add');
    await queue.enqueue(task);
    const [first] = await queue.claim('add', 'c1', 1, { leaseMs: 60_000, blockMs: 0 });
    await queue.retryLater('add', first!, 0);
    const [again] = await queue.claim('add', 'c1', 1, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual([again?.id, again?.retries], [task.id, 1]);
  } finally {
    await queue.close();
  }
});

test('when new entries never run out, then a lease that expired is still reclaimed at a housekeeping pass', async () => {
  await admin.flushall();
  const queue = openQueue({ sweepEveryMs: 50 });
  try {
    for (let i = 0; i < 2000; i++) await queue.enqueue(newTask('add'));
    const [lost] = await queue.claim('add', 'gone', 1, { leaseMs: 200, blockMs: 0 });
    // Another consumer (same lease: a claimer's own lease decides what has expired) keeps
    // claiming one task at a time: there is always a new entry to read.
    const reclaimed = await eventually(async () => {
      const [task] = await queue.claim('add', 'live', 1, { leaseMs: 200, blockMs: 0 });
      return task?.id === lost!.id ? task : undefined;
    }, 'the lost task to be claimed again', 20_000);
    assert.equal(reclaimed.deliveries, 2);
    assert.ok((await queue.stats(['add'])).add!.depth > 1000, 'new entries were still waiting when it was reclaimed');
  } finally {
    await queue.close();
  }
});
