/** The queue contract against the embedded SQLite queue, one temporary directory per test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteQueue } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { testClock } from './harness.js';
import { runQueueContract } from './queue.contract.js';

runQueueContract('sqlite', async (options) => {
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-sqlite-'));
  const clock = testClock();
  const opened: DurableQueue[] = [];
  return {
    clock,
    serverTime: false,
    open() {
      const queue = createSqliteQueue(dir, { resultTtlS: 3600, maxDeliveries: 5, ...options, now: clock.now });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
