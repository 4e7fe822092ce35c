/**
 * A key whose holder died (reserved, no outcome ever recorded) and many concurrent retries with
 * it, against a real gateway and a real add service, on both queues: the request is taken over
 * and computed once, not once per retry. The add service's own metrics count the computations.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { http, waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { openQueue } from '../../src/queue/index.js';

let redis: TestRedis | undefined;
let cluster: Cluster | undefined;
after(async () => {
  await cluster?.close();
  await redis?.stop();
});

async function addCalls(metricsUrl: string): Promise<number> {
  const text = (await http(metricsUrl)).text;
  const line = text.split('\n').find((l) => l.startsWith('calcmesh_grpc_server_calls_total{') && l.includes('rpc="Add"') && l.includes('outcome="OK"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function takeoverOnce(backend: 'sqlite' | 'redis') {
  if (backend === 'redis') redis ??= await startRedis();
  await cluster?.close();
  cluster = await startCluster({ services: [], redisUrl: backend === 'redis' ? `${redis!.url}/1` : undefined });
  const metricsPort = await freePort();
  await cluster.startService('add', { CALC_METRICS_PORT: String(metricsPort) });
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/add/1/1`)).status === 200 ? true : undefined), 'add to answer directly');
  const before = await addCalls(metricsUrl);

  // A holder that reserved the key and died before recording anything (the gateway's own format).
  const queue = openQueue({ redisUrl: cluster.env.CALC_REDIS_URL || undefined, dataDir: cluster.env.CALC_DATA_DIR ?? '', resultTtlS: 3600, maxDeliveries: 5 });
  try {
    assert.equal(await queue.reserveKey('anonymous', 'dead-key', 'dead-holder-id add:2:3'), undefined);
  } finally {
    await queue.close();
  }
  const replies = await Promise.all(Array.from({ length: 24 }, () => http(`${cluster!.gatewayUrl}/add/2/3`, { headers: { 'idempotency-key': 'dead-key' } })));
  for (const reply of replies) assert.equal(reply.status, 200, reply.text);
  assert.ok(replies.every((r) => r.body.result === 5 && r.body.id === 'dead-holder-id'), 'every retry answers the same id and result');
  assert.equal((await addCalls(metricsUrl)) - before, 1, 'the dead holder\'s request was computed once');
}

describe('idempotency takeover', () => {
  test('when a key\'s holder died and 24 retries arrive at once (embedded queue), then exactly one takes over and computes', () => takeoverOnce('sqlite'));
  test('when a key\'s holder died and 24 retries arrive at once (Redis), then exactly one takes over and computes', () => takeoverOnce('redis'));
});
