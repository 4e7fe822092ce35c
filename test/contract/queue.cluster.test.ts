/**
 * The queue contract on a real six-node Redis Cluster (shared by the file): every script must
 * run on one slot. Then #15's delivery channels with each operation split over three hash tags
 * (CALC_QUEUE_PARTITIONS=3: logs, webhook streams and dead letters spread over the tags), and
 * partitions with a master killed.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { createRedisQueue } from '../../src/queue/index.js';
import { keyLayout } from '../../src/queue/redis-codec.js';
import type { RedisSettings } from '../../src/shared/config.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { runDeliveryContract } from './delivery.contract.js';
import { eventually, newTask, testClock, type HarnessOptions, type QueueHarness } from './harness.js';
import { runQueueContract } from './queue.contract.js';

let cluster: TestCluster;
let settings: RedisSettings;
before(async () => {
  cluster = await startRedisCluster();
  settings = { topology: 'cluster', nodes: cluster.seeds.split(',').slice(0, 2), master: 'mymaster', minReplicas: 0, partitions: 1 };
});
after(async () => {
  await cluster?.stop();
});

async function clusterHarness(options: HarnessOptions, partitions = 1): Promise<QueueHarness> {
  await cluster.flushAll();
  const clock = testClock();
  const opened: DurableQueue[] = [];
  return {
    clock,
    serverTime: true,
    open() {
      const queue = createRedisQueue({ ...settings, partitions }, { resultTtlS: 3600, maxDeliveries: 5, ...options, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
    },
  };
}

runQueueContract('redis cluster', (options) => clusterHarness(options));

describe('Redis Cluster with three partitions', () => {
  let h: QueueHarness;
  let q: DurableQueue;
  beforeEach(async () => {
    h = await clusterHarness({ maxDeliveries: 2 }, 3);
    q = h.open();
  });
  afterEach(() => h.close());
  runDeliveryContract(() => h, () => q);
});

describe('Redis Cluster: partitions and a master killed', () => {
  const drain = async (queue: DurableQueue, expected: number) => {
    let done = 0;
    await eventually(async () => {
      const tasks = await queue.claim('add', 'c1', 100, { leaseMs: 60_000, blockMs: 200 }).catch(() => []);
      if (tasks.length > 0) await queue.complete('add', tasks.map((task) => ({ task, outcome: { ok: true as const, result: task.num1! + task.num2! } })));
      done += tasks.length;
      return done >= expected ? true : undefined;
    }, `${expected} tasks to be claimed and completed`, 30_000);
  };

  test('when an operation is split over three hash tags, then its tasks land on several tags and one consumer drains them all', async () => {
    await cluster.flushAll();
    const queue = createRedisQueue({ ...settings, partitions: 3 }, { resultTtlS: 3600, maxDeliveries: 5 });
    const admin = new Cluster(cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
    try {
      const tasks = Array.from({ length: 30 }, () => newTask('add'));
      for (const task of tasks) await queue.enqueue(task);
      const layout = keyLayout(true, 3);
      const lengths = await Promise.all([0, 1, 2].map((p) => admin.xlen(layout.stream('add', p))));
      assert.equal(lengths.reduce((a, b) => a + b, 0), 30);
      assert.ok(lengths.filter((n) => n > 0).length >= 2, `tasks spread over the tags: ${lengths}`);
      assert.equal((await queue.stats(['add'])).add?.depth, 30);
      await drain(queue, 30);
      const taken = await queue.takeCompleted('alice', 100);
      assert.deepEqual(taken.map((t) => t.id).sort(), tasks.map((t) => t.id).sort());
      for (const task of tasks) assert.equal((await queue.getTicket('alice', task.id))?.result, task.num1! + task.num2!);
    } finally {
      admin.disconnect();
      await queue.close();
    }
  });

  test('when claims on three tags come between housekeeping passes, then each plain read goes to its tag\'s node and the backlog drains with an undecodable entry dead-lettered', async () => {
    await cluster.flushAll();
    // One pass of claim.lua per partition (the first claim there), plain reads from then on.
    const queue = createRedisQueue({ ...settings, partitions: 3 }, { resultTtlS: 3600, maxDeliveries: 5, sweepEveryMs: 60_000 });
    const admin = new Cluster(cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
    try {
      assert.deepEqual(await queue.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 0 }), [], 'every partition swept once, nothing there');
      const tasks = Array.from({ length: 30 }, () => newTask('add'));
      for (const task of tasks) await queue.enqueue(task);
      const layout = keyLayout(true, 3);
      const bad = newTask('add');
      const p = layout.partitionOf(bad.id);
      await admin.hset(layout.ticket('add', p, bad.id), 'id', bad.id, 'client', 'alice', 'status', 'queued', 'operation', 'add', 'createdAt', String(Date.now()));
      await admin.xadd(layout.stream('add', p), '*', 'id', bad.id, 't', '{"id": not json', 'at', String(Date.now()));
      await drain(queue, 30);
      const taken = await queue.takeCompleted('alice', 100);
      assert.deepEqual(taken.filter((t) => t.status === 'done').map((t) => t.id).sort(), tasks.map((t) => t.id).sort());
      assert.deepEqual(taken.filter((t) => t.status === 'failed').map((t) => [t.id, t.error?.code]), [[bad.id, 'DEAD_LETTER']]);
      assert.equal((await queue.stats(['add'])).add?.depth, 0);
    } finally {
      admin.disconnect();
      await queue.close();
    }
  });

  test('when a cluster master is killed with tickets queued, then its replica takes over and none is lost', async () => {
    await cluster.flushAll();
    const queue = createRedisQueue({ ...settings, partitions: 3 }, { resultTtlS: 3600, maxDeliveries: 5 });
    try {
      const tasks = Array.from({ length: 60 }, () => newTask('add'));
      for (const task of tasks) await queue.enqueue(task);
      await cluster.waitForReplicas();
      const victim = await cluster.masterOf(keyLayout(true, 3).stream('add', 0));
      await victim.kill();
      await cluster.waitForFailover(victim);
      await drain(queue, 60);
      const taken: string[] = [];
      await eventually(async () => {
        taken.push(...(await queue.takeCompleted('alice', 100).catch(() => [])).map((t) => t.id));
        return taken.length >= 60 ? true : undefined;
      }, 'the 60 completed tickets');
      assert.deepEqual(taken.sort(), tasks.map((t) => t.id).sort(), 'every ticket completed and taken once');
    } finally {
      await queue.close();
    }
  });
});
