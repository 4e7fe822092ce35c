/**
 * The failure matrix of the durable failover, against real processes and a real redis-server
 * (AOF on). Each test states a failure and what a client must see.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor, type HttpReply } from '../helpers/gateway.js';
import { createRedisQueue } from '../../src/queue/index.js';

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

const queued = (reply: HttpReply) => {
  assert.equal(reply.status, 202, reply.text);
  assert.equal(reply.body.status, 'queued');
  assert.equal(reply.headers.get('location'), `/v1/results/${reply.body.id}`);
  return reply.body.id as string;
};

const resultOf = async (base: string, id: string) => {
  const reply = await http(`${base}/v1/results/${id}?wait=10`);
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
};

describe('durable failover through Redis Streams', () => {
  test('when a service is killed, then its requests get 202 and tickets; when it restarts, then each ticket is done with the right result', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl() });
    await cluster.signalService('add', 'SIGKILL');
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(queued(await http(`${cluster.gatewayUrl}/add/${i}/0.5`)));
    assert.equal((await http(`${cluster.gatewayUrl}/multiply/3/4`)).body.result, 12, 'other operations unaffected');
    assert.equal((await resultOf(cluster.gatewayUrl, ids[3]!)).status, 'queued');
    await cluster.startService('add');
    for (const [i, id] of ids.entries()) {
      const ticket = await resultOf(cluster.gatewayUrl, id);
      assert.equal(ticket.status, 'done');
      assert.equal(ticket.result, i + 0.5);
      assert.equal(ticket.operation, 'add');
      assert.equal(ticket.num1, i);
    }
  });

  test('when a service hangs (SIGSTOP), then requests get 202 within the deadline; after SIGCONT, then the tickets are done', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), env: { CALC_DEADLINE_MS: '300' } });
    await cluster.signalService('subtract', 'SIGSTOP');
    const started = Date.now();
    const id = queued(await http(`${cluster.gatewayUrl}/subtract/10/4`));
    assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started} ms`);
    await cluster.signalService('subtract', 'SIGCONT');
    assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 6);
  });

  test('when the queue holds other operations\' tasks, then a returning service drains only its own and serves at once', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['subtract', 'divide', 'evaluate'] });
    const adds = [queued(await http(`${cluster.gatewayUrl}/add/1/1`)), queued(await http(`${cluster.gatewayUrl}/add/2/2`))];
    const multiply = queued(await http(`${cluster.gatewayUrl}/multiply/5/5`));
    await cluster.startService('add');
    // "At once": as soon as the gateway's channel has reconnected (its backoff is capped at 1 s).
    await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/add/20/22`)).body.result === 42 ? true : undefined), 'a direct answer from add', 5000);
    assert.deepEqual([(await resultOf(cluster.gatewayUrl, adds[0]!)).result, (await resultOf(cluster.gatewayUrl, adds[1]!)).result], [2, 4]);
    const still = await http(`${cluster.gatewayUrl}/v1/results/${multiply}`);
    assert.equal(still.body.status, 'queued', 'the add service left the multiply task alone');
    await cluster.startService('multiply');
    assert.equal((await resultOf(cluster.gatewayUrl, multiply)).result, 25);
  });

  test('when a consumer dies holding a task, then the task is reclaimed after its lease and done exactly once', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['add', 'subtract', 'divide', 'evaluate'], env: { CALC_LEASE_MS: '500' } });
    const id = queued(await http(`${cluster.gatewayUrl}/multiply/6/7`));
    // A consumer takes the task and dies before completing it: the claim exists, the ack never comes.
    const queue = createRedisQueue(cluster.env.CALC_REDIS_URL!, { resultTtlS: 3600, maxDeliveries: 5 });
    try {
      const claimed = await queue.claim('multiply', 'doomed-consumer', 10, { leaseMs: 500, blockMs: 0 });
      assert.deepEqual(claimed.map((t) => t.id), [id]);
    } finally {
      await queue.close();
    }
    await cluster.startService('multiply');
    const ticket = await resultOf(cluster.gatewayUrl, id);
    assert.equal(ticket.status, 'done');
    assert.equal(ticket.result, 42);
    const pending = (await http(`${cluster.gatewayUrl}/pending_results`)).body.results.filter((t: { id: string }) => t.id === id);
    assert.equal(pending.length, 1, 'delivered once');
  });

  test('when the gateway is killed -9 right after a 202, then the ticket is still done and fetchable from a new gateway', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['subtract', 'multiply', 'divide', 'evaluate'] });
    const id = queued(await http(`${cluster.gatewayUrl}/add/40/2`));
    await cluster.killGateway('SIGKILL');
    await cluster.startService('add');
    await cluster.startGateway();
    assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 42);
  });

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
    // And the request really was not stored: a returning service finds nothing to do.
    await cluster.startService('add');
    assert.deepEqual((await http(`${cluster.gatewayUrl}/pending_results`)).body.results, []);
  });

  test('when the same Idempotency-Key is sent twice, directly and while queued, then one id and one result', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl() });
    const headers = { 'idempotency-key': 'direct-1' };
    const first = await http(`${cluster.gatewayUrl}/add/2/3`, { headers });
    const again = await http(`${cluster.gatewayUrl}/add/2/3`, { headers });
    assert.equal(first.status, 200);
    assert.deepEqual(again.body, first.body);

    await cluster.signalService('multiply', 'SIGKILL');
    const queuedHeaders = { 'idempotency-key': 'queued-1' };
    const id = queued(await http(`${cluster.gatewayUrl}/multiply/2/3`, { headers: queuedHeaders }));
    assert.equal(queued(await http(`${cluster.gatewayUrl}/multiply/2/3`, { headers: queuedHeaders })), id);
    const conflict = await http(`${cluster.gatewayUrl}/multiply/9/9`, { headers: queuedHeaders });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'CONFLICT');
    await cluster.startService('multiply');
    assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 6);
    const afterDrain = await http(`${cluster.gatewayUrl}/multiply/2/3`, { headers: queuedHeaders });
    assert.deepEqual([afterDrain.status, afterDrain.body.id, afterDrain.body.result], [200, id, 6]);
    const pending = (await http(`${cluster.gatewayUrl}/pending_results`)).body.results;
    assert.deepEqual(pending.map((t: { id: string }) => t.id), [id], 'one ticket, one result');
  });

  test('when two clients fetch /pending_results concurrently, then each result is delivered to exactly one of them', async () => {
    cluster = await startCluster({ redisUrl: isolatedUrl(), services: ['subtract', 'multiply', 'divide', 'evaluate'] });
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add(queued(await http(`${cluster.gatewayUrl}/add/${i}/${i}`)));
    await cluster.startService('add');
    const delivered: string[] = [];
    await waitFor(async () => {
      const replies = await Promise.all([0, 1, 2, 3].map(() => http(`${cluster!.gatewayUrl}/pending_results`)));
      delivered.push(...replies.flatMap((r) => r.body.results.map((t: { id: string }) => t.id)));
      return delivered.length >= ids.size ? true : undefined;
    }, 'every result to be delivered', 20_000);
    assert.equal(delivered.length, ids.size, 'none lost, none twice');
    assert.deepEqual(new Set(delivered), ids);
  });
});
