/**
 * The durable failover over a real redis-server (AOF on): the matrix every backend passes
 * (failover.matrix.ts), then what only Redis can do wrong. Each test states a failure and what a
 * client must see.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';
import { failoverMatrix, queued, resultOf } from './failover.matrix.js';

let redis: TestRedis;
let cluster: Cluster | undefined;
/** Each test gets a Redis database of its own (1…15), so none sees another's tickets. */
let db = 0;
const isolatedUrl = () => `${redis.url}/${++db}`;

before(async () => { redis = await startRedis({ appendonly: true, appendfsync: 'always' }); });
after(async () => {
  await cluster?.close();
  await redis.stop();
});
beforeEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

failoverMatrix('Redis Streams', () => ({ redisUrl: isolatedUrl() }));

describe('durable failover, what only Redis can do wrong', () => {
  test('when Redis restarts (AOF on) between enqueue and drain, then every ticket is still done', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['add', 'subtract', 'multiply', 'evaluate'] });
    const ids = [];
    for (let i = 1; i <= 10; i++) ids.push(queued(await http(`${cluster.gatewayUrl}/divide/${i * 10}/${i}`)));
    await redis.restart();
    await cluster.startService('divide');
    for (const id of ids) assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 10);
  });

  test('when Redis is down, the service up and the outbox off, then direct calls still answer 200 and a keyed one 503', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), env: { CALC_OUTBOX: 'off' } });
    await redis.kill();
    try {
      for (let i = 0; i < 5; i++) assert.equal((await http(`${cluster.gatewayUrl}/add/${i}/1`)).body.result, i + 1);
      // With an Idempotency-Key the request cannot be honoured without the store: refused, never answered twice.
      const keyed = await http(`${cluster.gatewayUrl}/add/1/1`, { headers: { 'idempotency-key': 'during-outage' } });
      assert.deepEqual([keyed.status, keyed.body.error.code], [503, 'UNAVAILABLE']);
    } finally {
      await redis.restart();
    }
  });

  test('when Redis is down, the service down too and the outbox off (CALC_OUTBOX=off), then 503 UNAVAILABLE and no ticket is issued', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['subtract', 'multiply', 'divide', 'evaluate'], env: { CALC_OUTBOX: 'off' } });
    await redis.kill();
    try {
      const reply = await http(`${cluster.gatewayUrl}/add/1/2`);
      assert.equal(reply.status, 503, reply.text);
      assert.equal(reply.body.error.code, 'UNAVAILABLE');
      assert.equal(reply.body.id, undefined);
      assert.equal(reply.headers.get('location'), null);
    } finally {
      await redis.restart();
    }
    // And the request really was not stored: with Redis back and add still down, its queue is empty.
    const status = await waitFor(async () => {
      const reply = await http(`${cluster!.gatewayUrl}/v1/status`);
      return reply.body?.services?.add?.queue ? reply.body : undefined;
    }, 'the queue to answer again');
    assert.equal(status.services.add.queue.depth, 0, 'a 503 stored a task');
  });
});
