/**
 * The gateway's outbox against real processes: a redis-server (AOF always) that is killed, a
 * gateway killed -9 and started again, the add service down until the end. One system for the
 * file; the tests run in order and each starts from where the previous one left it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor, type HttpReply } from '../helpers/gateway.js';

let redis: TestRedis;
let cluster: Cluster;

before(async () => {
  redis = await startRedis({ appendonly: true, appendfsync: 'always' });
  cluster = await startCluster({ redisUrl: redis.url, services: ['subtract', 'multiply', 'divide', 'evaluate'] });
});
after(async () => {
  await cluster?.close();
  await redis?.stop();
});

const queued = (reply: HttpReply) => {
  assert.equal(reply.status, 202, reply.text);
  assert.equal(reply.body.status, 'queued');
  return reply.body.id as string;
};
const status = async () => (await http(`${cluster.gatewayUrl}/v1/status`)).body;
/** Every id sent to add, with the sum it must come back with. */
const expected = new Map<string, number>();
const sendAdd = async (a: number, headers: Record<string, string> = {}) => {
  const id = queued(await http(`${cluster.gatewayUrl}/add/${a}/1000`, { headers }));
  expected.set(id, a + 1000);
  return id;
};

describe('the outbox, when Redis cannot take a write', () => {
  test('when Redis is killed with a service down, then requests still get 202 and their tickets read back queued from the outbox', async () => {
    await sendAdd(0); // stored in Redis itself, before the outage
    await redis.kill();
    const journaled = [];
    for (let i = 1; i <= 5; i++) journaled.push(await sendAdd(i));
    for (const id of journaled) {
      const ticket = await http(`${cluster.gatewayUrl}/v1/results/${id}`);
      assert.deepEqual([ticket.status, ticket.body.status, ticket.body.num1], [200, 'queued', expected.get(id)! - 1000]);
    }
    const queue = (await status()).queue;
    assert.equal(queue.ok, false, 'Redis is reported down');
    assert.equal(queue.outbox.depth, 5);
    assert.ok(queue.outbox.oldestAgeMs >= 0);
    const metrics = (await http(`${cluster.gatewayUrl}/metrics`)).text;
    assert.match(metrics, /^calcmesh_outbox_depth 5$/m);
    assert.equal((await http(`${cluster.gatewayUrl}/readyz`)).status, 200, 'ready: the outbox accepts');
  });

  test('when an Idempotency-Key comes twice while Redis is down, then both answers carry the first id and only one request is journaled', async () => {
    const headers = { 'idempotency-key': 'outage-1' };
    const first = await sendAdd(100, headers);
    const again = await http(`${cluster.gatewayUrl}/add/100/1000`, { headers });
    assert.deepEqual([again.status, again.body.id], [202, first]);
    const conflict = await http(`${cluster.gatewayUrl}/add/101/1000`, { headers });
    assert.equal(conflict.status, 409, conflict.text);
    // A direct answer under a key is remembered too: the retry replays it without computing.
    const directHeaders = { 'idempotency-key': 'outage-direct' };
    const direct = await http(`${cluster.gatewayUrl}/multiply/6/7`, { headers: directHeaders });
    const replay = await http(`${cluster.gatewayUrl}/multiply/6/7`, { headers: directHeaders });
    assert.deepEqual([direct.status, direct.body.result], [200, 42]);
    assert.deepEqual(replay.body, direct.body);
  });

  test('when the gateway is killed -9 with a non-empty outbox, then after its restart and Redis\'s return every request is computed once', async () => {
    const before = (await status()).queue.outbox.depth;
    assert.ok(before > 0);
    await cluster.killGateway('SIGKILL');
    await cluster.startGateway();
    assert.equal((await status()).queue.outbox.depth, before, 'the journal survived the kill');
    const someId = [...expected.keys()][3]!;
    assert.equal((await http(`${cluster.gatewayUrl}/v1/results/${someId}`)).body.status, 'queued');

    await redis.restart();
    await waitFor(async () => ((await status()).queue.outbox?.depth === 0 ? true : undefined), 'the outbox to be forwarded to Redis', 20_000);
    await cluster.startService('add');
    for (const [id, sum] of expected) {
      const ticket = await http(`${cluster.gatewayUrl}/v1/results/${id}?wait=10`);
      assert.deepEqual([ticket.body.status, ticket.body.result], ['done', sum], `ticket ${id}`);
    }
    const delivered = await waitFor(async () => {
      const results = (await http(`${cluster.gatewayUrl}/pending_results`)).body.results as { id: string }[];
      return results.length > 0 ? results.map((r) => r.id) : undefined;
    }, 'the completed tickets to be pending');
    assert.deepEqual([...delivered].sort(), [...expected.keys()].sort(), 'each request completed and delivered exactly once');
    assert.deepEqual((await http(`${cluster.gatewayUrl}/pending_results`)).body.results, []);
    const replay = await http(`${cluster.gatewayUrl}/multiply/6/7`, { headers: { 'idempotency-key': 'outage-direct' } });
    assert.equal(replay.body.result, 42, 'the directly answered ticket reached Redis too');
  });

  test('when the outbox is full, then a request that Redis cannot take gets 503 and nothing is accepted', async () => {
    await cluster.signalService('add', 'SIGKILL');
    cluster.env.CALC_OUTBOX_MAX = '2';
    await cluster.killGateway('SIGTERM');
    await cluster.startGateway();
    await redis.kill();
    await sendAdd(1);
    await sendAdd(2);
    const refused = await http(`${cluster.gatewayUrl}/add/3/1000`);
    assert.deepEqual([refused.status, refused.body.error.code, refused.body.id], [503, 'UNAVAILABLE', undefined]);
    const { depth, max } = (await status()).queue.outbox;
    assert.deepEqual({ depth, max }, { depth: 2, max: 2 });
    await redis.restart();
  });
});
