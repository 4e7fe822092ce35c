/**
 * Redis behind Sentinel with replica-acknowledged writes, against real processes: a master, a
 * replica and three sentinels shared by the file (test/helpers/redis-sentinel.ts), and the
 * calcmesh system started from the CLI with CALC_REDIS_SENTINELS and CALC_REDIS_MIN_REPLICAS=1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisQueue } from '../../src/queue/index.js';
import type { RedisSettings } from '../../src/shared/config.js';
import { startSentinelGroup, type SentinelGroup } from '../helpers/redis-sentinel.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';
import { newTask } from '../contract/harness.js';

let group: SentinelGroup;
let cluster: Cluster | undefined;
let settings: RedisSettings;

before(async () => {
  group = await startSentinelGroup();
  settings = { topology: 'sentinel', sentinels: group.sentinels.split(','), master: group.masterName, minReplicas: 1, partitions: 1 };
});
after(async () => {
  await cluster?.close();
  await group?.stop();
});

describe('Redis behind Sentinel, writes acknowledged by a replica', () => {
  test('when no replica can acknowledge a write in time, then the enqueue is refused UNAVAILABLE; when the replica answers again, then it is accepted', async () => {
    const queue = createRedisQueue(settings, { resultTtlS: 3600, maxDeliveries: 5 });
    const master = await group.master();
    const standby = group.nodes.find((n) => n !== master)!;
    try {
      await queue.enqueue(newTask('add'));
      standby.pause();
      try {
        await assert.rejects(queue.enqueue(newTask('add')), (error: { code?: string; message?: string }) => error.code === 'UNAVAILABLE' && /replicas acknowledged/.test(error.message ?? ''));
      } finally {
        standby.resume();
      }
      await waitFor(async () => ((await queue.enqueue(newTask('add')).catch(() => undefined)) ? true : undefined), 'an acknowledged enqueue after the replica resumed');
    } finally {
      await queue.close();
    }
  });

  test('when the master is killed under load with a service down, then every 202 is done exactly once and none is lost', async () => {
    cluster = await startCluster({
      services: ['subtract', 'multiply', 'divide', 'evaluate'],
      env: { CALC_REDIS_SENTINELS: group.sentinels, CALC_REDIS_MASTER: group.masterName, CALC_REDIS_MIN_REPLICAS: '1' },
    });
    const gateway = cluster.gatewayUrl;
    const accepted = new Map<string, number>();
    let refused = 0;
    let n = 0;
    let running = true;
    const worker = async () => {
      while (running) {
        const a = ++n;
        const reply = await http(`${gateway}/add/${a}/0.5`);
        if (reply.status === 202) accepted.set(reply.body.id, a + 0.5);
        else if (reply.status === 503) refused += 1;
        else assert.fail(`unexpected answer ${reply.status}: ${reply.text}`);
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    try {
      await waitFor(() => (accepted.size >= 100 ? true : undefined), '100 requests accepted before the kill', 30_000);
      const old = await group.master();
      await old.kill();
      const promoted = await group.waitForFailover(old);
      // The old master comes back as a replica of the new one, so WAIT 1 can be met again.
      await old.restart();
      const sizeAfterFailover = accepted.size;
      await waitFor(() => (accepted.size >= sizeAfterFailover + 100 ? true : undefined), '100 more requests accepted after the failover', 30_000);
      assert.notEqual(promoted, old);
    } finally {
      running = false;
      await Promise.all(workers);
    }
    await waitFor(async () => ((await http(`${gateway}/v1/status`)).body.queue.outbox?.depth === 0 ? true : undefined), 'the outbox to be forwarded', 30_000);
    await cluster.startService('add');
    for (const [id, result] of accepted) {
      const ticket = await http(`${gateway}/v1/results/${id}?wait=10`);
      assert.deepEqual([ticket.status, ticket.body.status, ticket.body.result], [200, 'done', result], `ticket ${id}`);
    }
    const delivered: string[] = [];
    for (;;) {
      const batch = (await http(`${gateway}/pending_results`)).body.results as { id: string }[];
      if (batch.length === 0) break;
      delivered.push(...batch.map((t) => t.id));
    }
    assert.equal(delivered.length, new Set(delivered).size, 'none delivered twice');
    assert.deepEqual(delivered.sort(), [...accepted.keys()].sort(), 'every accepted request delivered once');
    // A 503 (nothing accepted) is allowed by the contract; with the outbox on, none is expected.
    assert.equal(refused, 0, 'the outbox took what the failing-over Redis could not');
  });
});
