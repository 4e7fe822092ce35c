/**
 * A six-node Redis Cluster for one test file (three masters, one replica each, node timeout
 * 2 s), made with `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes` from
 * redis-servers on free ports in temporary directories. Share it between the tests of a file.
 */
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { waitFor } from './gateway.js';
import { startRedis, type TestRedis } from './redis-server.js';

export interface TestCluster {
  readonly nodes: readonly TestRedis[];
  /** `host:port,…` of every node, as CALC_REDIS_CLUSTER takes them. */
  readonly seeds: string;
  /** The node that is master of the slot of `key` now. */
  masterOf(key: string): Promise<TestRedis>;
  /** Waits until every live node reports the cluster ok and `dead` no longer serves slots. */
  waitForFailover(dead: TestRedis, timeoutMs?: number): Promise<void>;
  /** Waits until every live master's replicas have all of its writes (asynchronous replication caught up). */
  waitForReplicas(): Promise<void>;
  /** Deletes every key on every master. */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestCluster> {
  const nodes: TestRedis[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(await startRedis({ appendonly: true, appendfsync: 'always', args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    for (const node of nodes) {
      await waitFor(async () => (/cluster_state:ok/.test(await ask(node.port, ['CLUSTER', 'INFO']) as string) ? true : undefined), `node ${node.port} to see the cluster ok`, 20_000);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const alive = new Set(nodes);
  return {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    async masterOf(key) {
      const slot = (await ask(nodes.find((n) => alive.has(n))!.port, ['CLUSTER', 'KEYSLOT', key])) as number;
      const node = await waitFor(async () => {
        for (const n of alive) {
          const shards = (await ask(n.port, ['CLUSTER', 'SLOTS']).catch(() => undefined)) as [number, number, [string, number]][] | undefined;
          const owner = shards?.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
          if (owner !== undefined) return nodes.find((m) => m.port === Number(owner));
        }
        return undefined;
      }, `the master of slot ${slot}`);
      return node;
    },
    async waitForFailover(dead, timeoutMs = 30_000) {
      alive.delete(dead);
      await waitFor(async () => {
        for (const n of alive) {
          const nodesText = (await ask(n.port, ['CLUSTER', 'NODES']).catch(() => '')) as string;
          const info = (await ask(n.port, ['CLUSTER', 'INFO']).catch(() => '')) as string;
          const deadLine = nodesText.split('\n').find((line) => line.includes(`:${dead.port}@`)) ?? '';
          if (!/cluster_state:ok/.test(info) || !/fail/.test(deadLine) || / \d+-\d+/.test(deadLine)) return undefined;
        }
        return true;
      }, 'the cluster to fail the dead master over', timeoutMs);
    },
    async waitForReplicas() {
      await waitFor(async () => {
        for (const n of alive) {
          const info = (await ask(n.port, ['INFO', 'replication']).catch(() => '')) as string;
          if (!/role:master/.test(info)) continue;
          const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
          const replicas = [...info.matchAll(/slave\d+:.*offset=(\d+)/g)].map((m) => m[1]);
          if (replicas.length === 0 || replicas.some((r) => r !== offset)) return undefined;
        }
        return true;
      }, 'the replicas to catch up');
    },
    async flushAll() {
      for (const n of alive) await ask(n.port, ['FLUSHALL']).catch(() => undefined); // a replica refuses: fine
    },
    stop,
  };
}

async function ask(port: number, command: string[]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(command[0]!, ...command.slice(1));
  } finally {
    redis.disconnect();
  }
}
