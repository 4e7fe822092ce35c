/**
 * The queue contract through Redis Sentinel with replica-acknowledged writes
 * (CALC_REDIS_MIN_REPLICAS=1): a master, a replica and three sentinels, shared by the file.
 */
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisQueue } from '../../src/queue/index.js';
import type { RedisSettings } from '../../src/shared/config.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startSentinelGroup, type SentinelGroup } from '../helpers/redis-sentinel.js';
import { testClock } from './harness.js';
import { runQueueContract } from './queue.contract.js';

let group: SentinelGroup;
let admin: Redis;
let settings: RedisSettings;
before(async () => {
  group = await startSentinelGroup({ appendonly: false });
  admin = new Redis((await group.master()).url);
  settings = { topology: 'sentinel', sentinels: group.sentinels.split(','), master: group.masterName, minReplicas: 1, partitions: 1 };
});
after(async () => {
  admin?.disconnect();
  await group?.stop();
});

runQueueContract('redis sentinel, WAIT 1', async (options) => {
  await admin.flushall();
  const clock = testClock();
  const opened: DurableQueue[] = [];
  return {
    clock,
    serverTime: true,
    open() {
      const queue = createRedisQueue(settings, { resultTtlS: 3600, maxDeliveries: 5, ...options, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
    },
  };
});
