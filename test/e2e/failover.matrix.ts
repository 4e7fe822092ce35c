/**
 * The failure matrix of the durable failover that every queue backend must pass, against real
 * processes: `failoverMatrix(name, backend)` registers its tests in a describe block; `backend()`
 * gives each test the cluster options of a queue of its own. Backend-only failures (Redis
 * restarted, Redis down) stay in their own file.
 */
import { after, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster, type ClusterOptions } from '../helpers/cluster.js';
import { http, waitFor, type HttpReply } from '../helpers/gateway.js';
import { openQueue } from '../../src/queue/index.js';

export const queued = (reply: HttpReply) => {
  assert.equal(reply.status, 202, reply.text);
  assert.equal(reply.body.status, 'queued');
  assert.equal(reply.headers.get('location'), `/v1/results/${reply.body.id}`);
  return reply.body.id as string;
};

export const resultOf = async (base: string, id: string) => {
  const reply = await http(`${base}/v1/results/${id}?wait=10`);
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
};

export function failoverMatrix(name: string, backend: () => Pick<ClusterOptions, 'redisUrl'>): void {
  describe(`durable failover, ${name}`, () => {
    let cluster: Cluster | undefined;
    after(async () => { await cluster?.close(); });
    beforeEach(async () => {
      await cluster?.close();
      cluster = undefined;
    });

    test('when a service is killed, then its requests get 202 and tickets; when it restarts, then each ticket is done with the right result', async () => {
      cluster = await startCluster(backend());
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

    test('when a service hangs (SIGSTOP), then requests get 202 (the deadline ran out, the call was not left hanging); after SIGCONT, then the tickets are done', async () => {
      cluster = await startCluster({ ...backend(), env: { CALC_DEADLINE_MS: '300' } });
      await cluster.signalService('subtract', 'SIGSTOP');
      const id = queued(await http(`${cluster.gatewayUrl}/subtract/10/4`));
      await cluster.signalService('subtract', 'SIGCONT');
      assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 6);
    });

    test('when the queue holds other operations\' tasks, then a returning service drains only its own and serves at once', async () => {
      cluster = await startCluster({ ...backend(), services: ['subtract', 'divide', 'evaluate'] });
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
      cluster = await startCluster({ ...backend(), services: ['add', 'subtract', 'divide', 'evaluate'], env: { CALC_LEASE_MS: '500' } });
      const id = queued(await http(`${cluster.gatewayUrl}/multiply/6/7`));
      // A consumer takes the task and dies before completing it: the claim exists, the ack never comes.
      const queue = openQueue({ redisUrl: cluster.env.CALC_REDIS_URL, dataDir: cluster.env.CALC_DATA_DIR!, resultTtlS: 3600, maxDeliveries: 5 });
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
      cluster = await startCluster({ ...backend(), services: ['subtract', 'multiply', 'divide', 'evaluate'] });
      const id = queued(await http(`${cluster.gatewayUrl}/add/40/2`));
      await cluster.killGateway('SIGKILL');
      await cluster.startService('add');
      await cluster.startGateway();
      assert.equal((await resultOf(cluster.gatewayUrl, id)).result, 42);
    });

    test('when the same Idempotency-Key is sent twice, directly and while queued, then one id and one result', async () => {
      cluster = await startCluster(backend());
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
      cluster = await startCluster({ ...backend(), services: ['subtract', 'multiply', 'divide', 'evaluate'] });
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
}
