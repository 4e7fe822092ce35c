/**
 * Both queue backends behind one face, for tests that must hold on each: a store that several
 * queue instances open, as several gateways and services would (a private redis-server, or one
 * SQLite file in a temp dir). `cluster` is a six-node Redis Cluster with each operation over two
 * hash tags; it is left out of BACKENDS (CI time) and asked for with
 * CALC_TEST_BACKENDS=sqlite,redis,cluster.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedis } from './redis-server.js';

export type BackendName = 'sqlite' | 'redis' | 'cluster';
const NAMES: readonly BackendName[] = ['sqlite', 'redis', 'cluster'];
export const BACKENDS: readonly BackendName[] = process.env.CALC_TEST_BACKENDS
  ? NAMES.filter((name) => process.env.CALC_TEST_BACKENDS!.split(',').includes(name))
  : ['sqlite', 'redis'];

export interface TestBackend {
  readonly name: BackendName;
  /** Another queue instance on the same store. */
  open(options?: { maxDeliveries?: number }): DurableQueue;
  close(): Promise<void>;
}

export async function startBackend(name: BackendName): Promise<TestBackend> {
  const redis = name === 'redis' ? await startRedis() : undefined;
  const cluster = name === 'cluster' ? await startRedisCluster() : undefined;
  const settings = cluster && { topology: 'cluster' as const, nodes: cluster.seeds.split(','), master: 'mymaster', minReplicas: 0, partitions: 2 };
  const dir = name === 'sqlite' ? mkdtempSync(join(tmpdir(), 'calcmesh-backend-')) : '';
  const opened: DurableQueue[] = [];
  return {
    name,
    open(options = {}) {
      const queue = openQueue({ redisUrl: redis?.url, redis: settings, dataDir: dir, resultTtlS: 3600, maxDeliveries: options.maxDeliveries ?? 5 });
      opened.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(opened.map((q) => q.close()));
      await redis?.stop();
      await cluster?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
