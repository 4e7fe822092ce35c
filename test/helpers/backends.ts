/**
 * Both queue backends behind one face, for tests that must hold on each: a store that several
 * queue instances open, as several gateways and services would (a private redis-server, or one
 * SQLite file in a temp dir).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedis } from './redis-server.js';

export type BackendName = 'sqlite' | 'redis';
export const BACKENDS: readonly BackendName[] = ['sqlite', 'redis'];

export interface TestBackend {
  readonly name: BackendName;
  /** Another queue instance on the same store. */
  open(options?: { maxDeliveries?: number }): DurableQueue;
  close(): Promise<void>;
}

export async function startBackend(name: BackendName): Promise<TestBackend> {
  const redis = name === 'redis' ? await startRedis() : undefined;
  const dir = name === 'sqlite' ? mkdtempSync(join(tmpdir(), 'calcmesh-backend-')) : '';
  const opened: DurableQueue[] = [];
  return {
    name,
    open(options = {}) {
      const queue = openQueue({ redisUrl: redis?.url, dataDir: dir, resultTtlS: 3600, maxDeliveries: options.maxDeliveries ?? 5 });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
