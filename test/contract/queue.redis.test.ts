/** The queue contract against Redis Streams, on a private redis-server started for this file. */
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisQueue } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testClock } from './harness.js';
import { runQueueContract } from './queue.contract.js';

let server: TestRedis;
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
      const queue = createRedisQueue(server.url, { resultTtlS: 3600, maxDeliveries: 5, ...options, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
    },
  };
});
