/**
 * The chaos run's `doubled/id-changed` violations, reproduced on purpose: a request carrying an
 * Idempotency-Key that reaches the gateway while its Redis connection is down (Redis restarting)
 * must still be answered once, under one id. The README promises that "the same key from the same
 * client returns the first outcome with the same id and never computes or enqueues again".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { exchange, authHeaders, sleep } from './client.js';
import type { Reply } from './ledger.js';

const KEY = 'k1-alice';
let redis: TestRedis;
let cluster: Cluster;

before(async () => {
  redis = await startRedis({ appendonly: true, appendfsync: 'always' });
  cluster = await startCluster({ redisUrl: redis.url, env: { CALC_API_KEYS: `${KEY}:alice`, CALC_DEADLINE_MS: '1500', CALC_RATE_LIMIT: '' } });
});
after(async () => {
  await cluster?.close();
  await redis?.stop();
});

/** Restarts Redis and resolves once the gateway reports its queue connection down. */
async function restartRedisUntilGatewayLosesIt(): Promise<Promise<void>> {
  const restarting = redis.restart();
  for (const until = Date.now() + 10_000; Date.now() < until;) {
    const status = await exchange(`${cluster.gatewayUrl}/v1/status`, { headers: authHeaders(KEY) });
    if ((status.body as { queue?: { ok?: boolean } } | undefined)?.queue?.ok === false) return restarting;
    await sleep(5);
  }
  throw new Error('the gateway never saw Redis go away');
}

/** Sends until a definitive answer (200, 202, 4xx), as the chaos clients do. */
async function send(path: string, idempotencyKey: string): Promise<Reply> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const reply = await exchange(`${cluster.gatewayUrl}${path}`, { headers: { ...authHeaders(KEY), 'idempotency-key': idempotencyKey } });
    if (reply.status !== 0 && reply.status < 500) return reply;
    await sleep(100);
  }
  throw new Error(`no definitive answer for ${path}`);
}

const idOf = (reply: Reply) => (reply.body as { id?: string }).id;

describe('idempotency while the queue is unreachable', () => {
  test('when a keyed request is answered directly while Redis restarts, then a replay of its key returns the same id', async () => {
    const restarting = await restartRedisUntilGatewayLosesIt();
    const first = await send('/add/2/3', 'outage-direct');
    await restarting;
    const replay = await send('/add/2/3', 'outage-direct');
    assert.equal(first.status, 200, JSON.stringify(first));
    assert.equal(replay.status, 200, JSON.stringify(replay));
    assert.equal(idOf(replay), idOf(first), 'one key, one id');
  });

  test('when a keyed request to a hung service is queued across a Redis restart, then a replay is not queued a second time', async () => {
    await cluster.signalService('subtract', 'SIGSTOP');
    try {
      const restarting = await restartRedisUntilGatewayLosesIt();
      const first = await send('/subtract/10/4', 'outage-queued');
      await restarting;
      const replay = await send('/subtract/10/4', 'outage-queued');
      await cluster.signalService('subtract', 'SIGCONT');
      // Collect until the first result has come and a second had 2 s more to follow it.
      const delivered: unknown[] = [];
      let until = Date.now() + 10_000;
      while (Date.now() < until) {
        const pending = await exchange(`${cluster.gatewayUrl}/pending_results`, { headers: authHeaders(KEY) });
        const results = (pending.body as { results?: unknown[] } | undefined)?.results ?? [];
        if (delivered.length === 0 && results.length > 0) until = Math.min(until, Date.now() + 2000);
        delivered.push(...results);
        await sleep(200);
      }
      assert.deepEqual(
        { ids: new Set([idOf(first), idOf(replay)]).size, pendingResults: delivered.length },
        { ids: 1, pendingResults: 1 },
        `one key: one id, one pending result\nanswers: ${JSON.stringify([first, replay])}\ndelivered: ${JSON.stringify(delivered)}`,
      );
    } finally {
      await cluster.signalService('subtract', 'SIGCONT');
    }
  });
});
