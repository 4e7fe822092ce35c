/**
 * Replicas, circuits and planned stops with real processes over one real Redis: the gateway
 * routes around what is down, queues only when nothing is left, and a returning replica drains
 * the backlog while it answers direct calls.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { counterSum, http, waitFor } from '../helpers/gateway.js';
import { startLoad } from '../helpers/load.js';

let redis: TestRedis;
let cluster: Cluster | undefined;
let db = 0;
const isolatedUrl = () => `${redis.url}/${++db}`;

before(async () => { redis = await startRedis(); });
after(async () => {
  await cluster?.close();
  await redis.stop();
});
beforeEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const replicaStates = async (base: string) =>
  (await http(`${base}/v1/status`)).body.services.add.replicas.map((r: { breaker: string }) => r.breaker);

test('when one of two add replicas is killed under load, then no request is queued or fails; when both are, then 202; when one returns, then the backlog drains while direct calls resume', async () => {
  cluster = await startCluster({ redisUrl: isolatedUrl(), replicas: { add: 2 } });
  const load = startLoad(cluster.gatewayUrl);
  await load.answers(100);
  await cluster.signalService('add', 'SIGKILL', 0);
  await load.answers(300);
  const afterOne = { ...(await load.stop()) };
  assert.deepEqual(afterOne.wrong, []);
  assert.deepEqual(Object.keys(afterOne.byStatus), ['200'], `statuses ${JSON.stringify(afterOne.byStatus)}`);
  assert.deepEqual(await replicaStates(cluster.gatewayUrl), ['open', 'closed']);

  await cluster.signalService('add', 'SIGKILL', 1);
  const tickets: string[] = [];
  for (let i = 0; i < 300; i++) {
    const reply = await http(`${cluster.gatewayUrl}/add/${i}/1000`);
    assert.equal(reply.status, 202, reply.text);
    tickets.push(reply.body.id);
  }
  await cluster.startService('add', {}, 0);
  const during = startLoad(cluster.gatewayUrl, { concurrency: 2 });
  for (const [i, id] of tickets.entries()) {
    const ticket: { status: string; result: number } = (await http(`${cluster.gatewayUrl}/v1/results/${id}?wait=15`)).body;
    assert.deepEqual([ticket.status, ticket.result], ['done', i + 1000]);
  }
  // Direct calls resume once the gateway's health watch has seen the replica back (≤ 2 s).
  await waitFor(() => ((during.tally.byStatus[200] ?? 0) > 0 ? true : undefined), 'a direct answer', 10_000);
  const resumed = await during.stop();
  assert.deepEqual(resumed.wrong, [], 'every answer was the right result or a ticket');
});

test('when a replica is stopped with SIGTERM under load, then not one request gets an error or a ticket', async () => {
  cluster = await startCluster({ redisUrl: isolatedUrl(), replicas: { add: 2 } });
  const load = startLoad(cluster.gatewayUrl);
  await load.answers(100);
  const stopping = cluster.service('add', 1)!;
  const stoppedAt = Date.now();
  await cluster.signalService('add', 'SIGTERM', 1);
  const stopMs = Date.now() - stoppedAt;
  await load.answers(300);
  const tally = await load.stop();
  assert.deepEqual(tally.wrong, []);
  assert.deepEqual(Object.keys(tally.byStatus), ['200'], `statuses ${JSON.stringify(tally.byStatus)}`);
  assert.match(stopping.output(), /add service stopped/);
  assert.equal(stopping.child.exitCode, 0, `exited cleanly after ${stopMs} ms`);
});

test('when the only replica hangs, then the circuit opens after the threshold and later requests are queued without waiting for the deadline; after SIGCONT, it closes again', async () => {
  cluster = await startCluster({
    redisUrl: isolatedUrl(),
    env: { CALC_DEADLINE_MS: '1500', CALC_BREAKER_FAILURES: '2', CALC_BREAKER_HALF_OPEN_MS: '300' },
  });
  await cluster.signalService('add', 'SIGSTOP');
  for (let i = 0; i < 2; i++) assert.equal((await http(`${cluster.gatewayUrl}/add/${i}/1`)).status, 202);
  assert.deepEqual(await replicaStates(cluster.gatewayUrl), ['open']);
  const calls = await counterSum(cluster.gatewayUrl, 'calcmesh_grpc_client_calls_total', { operation: 'add' });
  const fast = await http(`${cluster.gatewayUrl}/add/5/5`);
  assert.equal(fast.status, 202);
  assert.equal(await counterSum(cluster.gatewayUrl, 'calcmesh_grpc_client_calls_total', { operation: 'add' }), calls, 'a call was attempted although the circuit was open');
  await cluster.signalService('add', 'SIGCONT');
  await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/add/2/2`)).status === 200 ? true : undefined), 'the circuit to close', 15_000);
  assert.equal((await http(`${cluster.gatewayUrl}/v1/results/${fast.body.id}?wait=10`)).body.result, 10);
});
