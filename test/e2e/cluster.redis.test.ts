/**
 * calcmesh on a real six-node Redis Cluster (test/helpers/redis-cluster.ts), started from the CLI
 * with CALC_REDIS_CLUSTER and each operation split over two hash tags: the request paths a
 * client sees, end to end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http } from '../helpers/gateway.js';

let redis: TestCluster;
let system: Cluster;

before(async () => {
  redis = await startRedisCluster();
  system = await startCluster({
    services: ['subtract', 'multiply', 'divide'],
    env: { CALC_REDIS_CLUSTER: redis.seeds, CALC_QUEUE_PARTITIONS: '2' },
  });
});
after(async () => {
  await system?.close();
  await redis?.stop();
});

test('on Redis Cluster, when services are down, then requests get 202 (keyed ones once); when they return, then every ticket is done and delivered once', async () => {
  const url = system.gatewayUrl;
  assert.equal((await http(`${url}/multiply/6/7`)).body.result, 42, 'the direct path');
  assert.equal((await http(`${url}/divide/1/0`)).status, 422, 'a domain error, never queued');

  const expected = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const reply = await http(`${url}/add/${i}/0.25`);
    assert.equal(reply.status, 202, reply.text);
    expected.set(reply.body.id, i + 0.25);
  }
  const evaluate = await http(`${url}/v1/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression: '(6+7)*3 - 8/2' }) });
  assert.equal(evaluate.status, 202, evaluate.text);
  expected.set(evaluate.body.id, 35);
  const headers = { 'idempotency-key': 'cluster-1' };
  const keyed = await http(`${url}/add/100/1`, { headers });
  const again = await http(`${url}/add/100/1`, { headers });
  assert.deepEqual([keyed.status, again.status, again.body.id], [202, 202, keyed.body.id]);
  expected.set(keyed.body.id, 101);
  assert.equal((await http(`${url}/v1/results/${keyed.body.id}`)).body.status, 'queued');
  const status = (await http(`${url}/v1/status`)).body;
  assert.deepEqual([status.services.add.queue.depth, status.services.evaluate.queue.depth], [13, 1]);

  await Promise.all([system.startService('add'), system.startService('evaluate')]);
  for (const [id, result] of expected) {
    const ticket = await http(`${url}/v1/results/${id}?wait=10`);
    assert.deepEqual([ticket.body.status, ticket.body.result], ['done', result], `ticket ${id}`);
  }
  const delivered: string[] = [];
  for (;;) {
    const batch = (await http(`${url}/pending_results`)).body.results as { id: string }[];
    if (batch.length === 0) break;
    delivered.push(...batch.map((t) => t.id));
  }
  assert.deepEqual(delivered.sort(), [...expected.keys()].sort(), 'each delivered exactly once');
});
