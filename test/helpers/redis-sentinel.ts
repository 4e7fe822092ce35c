/**
 * A Sentinel group for one test file: a master, a replica and three `redis-server --sentinel`
 * processes on free ports in temporary directories, watching the master as `mymaster` (quorum 2,
 * down after 1 s). Resolves once the replica is in sync and every sentinel knows the replica and
 * the other two sentinels, so that a killed master is failed over without further waiting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './gateway.js';
import { freePort } from './ports.js';
import { startRedis, waitForPong, type TestRedis } from './redis-server.js';

export interface SentinelGroup {
  readonly masterName: string;
  /** The data nodes; which one is master changes with failovers. */
  readonly nodes: readonly TestRedis[];
  /** `host:port,…` of the sentinels, as CALC_REDIS_SENTINELS takes them. */
  readonly sentinels: string;
  /** The node the sentinels currently name as master. */
  master(): Promise<TestRedis>;
  /** Waits until the sentinels name a master other than `old` and it is writable with a replica attached again or not. */
  waitForFailover(old: TestRedis, timeoutMs?: number): Promise<TestRedis>;
  stop(): Promise<void>;
}

const MASTER = 'mymaster';
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startSentinelGroup(options: { appendonly?: boolean } = {}): Promise<SentinelGroup> {
  const persistence = { appendonly: options.appendonly ?? true, appendfsync: 'always' as const };
  const primary = await startRedis(persistence);
  const replica = await startRedis({ ...persistence, args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const nodes = [primary, replica];
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-sentinel-'));
  const ports: number[] = [];
  const sentinelChildren: ChildProcess[] = [];
  const stop = async () => {
    for (const child of sentinelChildren) child.kill('SIGKILL');
    await Promise.all(sentinelChildren.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'daemonize no', `logfile ${join(dir, `sentinel-${i}.log`)}`,
        `sentinel monitor ${MASTER} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`,
      ].join('\n') + '\n');
      const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
      children.add(child);
      child.once('exit', () => children.delete(child));
      sentinelChildren.push(child);
      if (!(await waitForPong(port, 10_000))) throw new Error(`sentinel ${i} did not start on port ${port}`);
      ports.push(port);
    }
    await waitFor(async () => (/state=online/.test(await info(primary.port, 'replication')) ? true : undefined), 'the replica to be in sync', 15_000);
    for (const port of ports) {
      await waitFor(async () => {
        const m = await sentinelMaster(port);
        return m['num-slaves'] === '1' && m['num-other-sentinels'] === '2' ? true : undefined;
      }, `sentinel ${port} to know the replica and the other sentinels`, 20_000);
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const master = async () => {
    const [, port] = (await askSentinel(ports, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER])) as [string, string];
    const node = nodes.find((n) => n.port === Number(port));
    if (!node) throw new Error(`the sentinels name an unknown master on port ${port}`);
    return node;
  };
  return {
    masterName: MASTER,
    nodes,
    sentinels: ports.map((p) => `127.0.0.1:${p}`).join(','),
    master,
    async waitForFailover(old, timeoutMs = 30_000) {
      return waitFor(async () => {
        const now = await master().catch(() => undefined);
        if (!now || now === old) return undefined;
        return (await info(now.port, 'replication').catch(() => '')).includes('role:master') ? now : undefined;
      }, 'the sentinels to promote the replica', timeoutMs);
    },
    stop,
  };
}

async function withClient<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

const info = (port: number, section: string) => withClient(port, (r) => r.info(section));

async function sentinelMaster(port: number): Promise<Record<string, string>> {
  const flat = (await withClient(port, (r) => r.call('SENTINEL', 'MASTER', MASTER))) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

async function askSentinel(ports: readonly number[], command: string[]): Promise<unknown> {
  let last: unknown;
  for (const port of ports) {
    try {
      return await withClient(port, (r) => r.call(command[0]!, ...command.slice(1)));
    } catch (error) {
      last = error;
    }
  }
  throw last;
}
