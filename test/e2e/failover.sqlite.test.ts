/**
 * The same failover on one machine with no Redis: the embedded SQLite queue, shared by the
 * gateway and the service processes through one file. The whole matrix every backend passes
 * (failover.matrix.ts), then a larger backlog with a domain error while its service is down.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';
import { failoverMatrix } from './failover.matrix.js';

// Each cluster makes a data directory (and so an embedded queue) of its own.
failoverMatrix('embedded SQLite queue', () => ({}));

let cluster: Cluster | undefined;
after(() => cluster?.close());

test('when a service is killed and restarted over the embedded queue, then every ticket is done once, and direct calls resume', async () => {
  cluster = await startCluster({ services: ['add', 'subtract', 'multiply', 'evaluate'] });
  const ids: string[] = [];
  for (let i = 1; i <= 50; i++) {
    const reply = await http(`${cluster.gatewayUrl}/divide/${i}/4`);
    assert.equal(reply.status, 202, reply.text);
    ids.push(reply.body.id);
  }
  const byZero = await http(`${cluster.gatewayUrl}/divide/1/0`);
  assert.equal(byZero.status, 422, 'a domain error is answered at once, never queued, even while divide is down');

  await cluster.startService('divide');
  for (const [i, id] of ids.entries()) {
    const ticket: { status: string; result: number } = (await http(`${cluster.gatewayUrl}/v1/results/${id}?wait=10`)).body;
    assert.deepEqual([ticket.status, ticket.result], ['done', (i + 1) / 4]);
  }
  const delivered: string[] = [];
  await waitFor(async () => {
    const replies = await Promise.all([0, 1].map(() => http(`${cluster!.gatewayUrl}/pending_results`)));
    delivered.push(...replies.flatMap((r) => r.body.results.map((t: { id: string }) => t.id)));
    return delivered.length >= ids.length ? true : undefined;
  }, 'every result to be delivered');
  assert.deepEqual([...delivered].sort(), [...ids].sort(), 'each delivered exactly once');
  await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/divide/9/3`)).body.result === 3 ? true : undefined), 'a direct answer', 5000);
});
