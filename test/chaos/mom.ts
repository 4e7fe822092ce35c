/**
 * The MOM a chaos run stands on, and what the monkey's "redis-restart" does to it:
 *   redis     one redis-server (AOF always): a graceful restart;
 *   sentinel  a master, a replica and three sentinels (CALC_REDIS_MIN_REPLICAS=1): the current
 *             master is killed -9, the sentinels promote the replica, the old master comes back
 *             as a replica of the new one;
 *   outage    one redis-server killed -9 and kept dead for `outageMs` (20 s by default) before it
 *             starts again, while the gateway's outbox takes what it cannot.
 * Each exposes the TestRedis shape the monkey and the run already use.
 */
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startSentinelGroup } from '../helpers/redis-sentinel.js';
import { sleep } from './client.js';

export type MomKind = 'redis' | 'sentinel' | 'outage';
export const MOM_KINDS: readonly MomKind[] = ['redis', 'sentinel', 'outage'];

export interface Mom {
  readonly kind: MomKind;
  /** Environment that points every calcmesh process at it. */
  readonly env: NodeJS.ProcessEnv;
  /** What the monkey calls `redis`: restart() is this MOM's failure, stop() its end. */
  readonly redis: TestRedis;
}

export async function startMom(kind: MomKind, options: { outageMs?: number; log?: (line: string) => void } = {}): Promise<Mom> {
  const log = options.log ?? (() => {});
  if (kind === 'sentinel') {
    const group = await startSentinelGroup();
    const first = group.nodes[0]!;
    const redis: TestRedis = {
      url: first.url,
      port: first.port,
      dir: first.dir,
      async restart() {
        const master = await group.master();
        log(`chaos: kill -9 the Sentinel master (port ${master.port})`);
        await master.kill();
        const promoted = await group.waitForFailover(master);
        log(`chaos: sentinels promoted port ${promoted.port}; the old master rejoins as its replica`);
        await master.restart();
      },
      kill: async () => (await group.master()).kill(),
      pause: () => undefined,
      resume: () => undefined,
      stop: () => group.stop(),
    };
    return { kind, redis, env: { CALC_REDIS_URL: '', CALC_REDIS_SENTINELS: group.sentinels, CALC_REDIS_MASTER: group.masterName, CALC_REDIS_MIN_REPLICAS: '1' } };
  }
  const server = await startRedis({ appendonly: true, appendfsync: 'always' });
  if (kind === 'redis') return { kind, redis: server, env: { CALC_REDIS_URL: server.url } };
  const outageMs = options.outageMs ?? 20_000;
  const redis: TestRedis = {
    get url() { return server.url; },
    get port() { return server.port; },
    dir: server.dir,
    async restart() {
      log(`chaos: kill -9 Redis and keep it dead for ${outageMs} ms`);
      await server.kill();
      await sleep(outageMs);
      await server.restart();
    },
    kill: () => server.kill(),
    pause: () => server.pause(),
    resume: () => server.resume(),
    stop: () => server.stop(),
  };
  return { kind, redis, env: { CALC_REDIS_URL: server.url } };
}
