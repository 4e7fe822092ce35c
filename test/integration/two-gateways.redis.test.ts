/** Two gateways over one Redis behave as one: the gateway keeps no state of its own outside the queue. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { openQueue, startConsumer } from '../../src/queue/index.js';
import { compute } from '../../src/domain/compute.js';
import { silentLogger } from '../../src/shared/logger.js';

let redis: TestRedis;
let services: TestServices;
let one: TestGateway;
let two: TestGateway;

before(async () => {
  redis = await startRedis();
  services = await startServices();
  await services.stop('add');
  one = await startGateway({ targets: services.targets, redisUrl: redis.url });
  two = await startGateway({ targets: services.targets, redisUrl: redis.url });
});
after(async () => {
  await one?.close();
  await two?.close();
  await services?.close();
  await redis?.stop();
});

test('when a ticket is issued by one gateway, then the other serves its result, its idempotency key and its pending delivery, once', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    const reply = await http(`${(i % 2 ? one : two).url}/add/${i}/1`);
    assert.equal(reply.status, 202, reply.text);
    ids.push(reply.body.id);
  }
  const keyed = await http(`${one.url}/add/7/7`, { headers: { 'idempotency-key': 'across' } });
  const replayed = await http(`${two.url}/add/7/7`, { headers: { 'idempotency-key': 'across' } });
  assert.equal(replayed.body.id, keyed.body.id, 'the key is shared through the queue');
  ids.push(keyed.body.id);

  // The add service comes back: its consumer drains what both gateways stored.
  const queue = openQueue({ redisUrl: redis.url, dataDir: '', resultTtlS: 3600, maxDeliveries: 5 });
  const consumer = startConsumer({
    queue, operation: 'add', consumer: 'add-test', leaseMs: 5000, logger: silentLogger(),
    handler: (task) => ({ ok: true, result: compute('add', task.num1!, task.num2!) }),
  });
  try {
    const ticket = (await http(`${one.url}/v1/results/${ids[0]}?wait=10`)).body;
    assert.deepEqual([ticket.status, ticket.result], ['done', 1]);
    const delivered: string[] = [];
    await waitFor(async () => {
      const replies = await Promise.all([one, two, one, two].map((g) => http(`${g.url}/pending_results`)));
      delivered.push(...replies.flatMap((r) => r.body.results.map((t: { id: string }) => t.id)));
      return delivered.length >= ids.length ? true : undefined;
    }, 'every pending result');
    assert.equal(delivered.length, ids.length);
    assert.deepEqual(new Set(delivered), new Set(ids));
  } finally {
    await consumer.stop();
    await queue.close();
  }
});
