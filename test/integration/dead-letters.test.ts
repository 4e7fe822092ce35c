/**
 * Dead letters for operators against real gateways, real gRPC services and each real queue
 * backend: listed, replayed to done (the owner gets the result), purged, and refused to clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compute } from '../../src/domain/compute.js';
import { startConsumer } from '../../src/queue/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import { BACKENDS, startBackend, type TestBackend } from '../helpers/backends.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { startServices, type TestServices } from '../helpers/services.js';

const KEYS = { 'alice-key': 'alice' };
const OPERATOR = { authorization: 'Bearer ops-key' };
const ALICE = { authorization: 'Bearer alice-key' };

for (const name of BACKENDS) {
  describe(`dead letters on ${name}`, () => {
    let backend: TestBackend;
    let services: TestServices;
    let gateway: TestGateway;
    let open: TestGateway;

    before(async () => {
      backend = await startBackend(name);
      services = await startServices();
      await services.stop('add');
      const config = { adminKeys: new Map([['ops-key', 'ops']]) };
      gateway = await startGateway({ targets: services.targets, queue: backend.open(), apiKeys: KEYS, config });
      // A gateway without client keys: an operator route still needs an operator key.
      open = await startGateway({ targets: services.targets, queue: backend.open(), config });
    });
    after(async () => {
      await gateway?.close();
      await open?.close();
      await services?.close();
      await backend?.close();
    });

    test('when tasks are dead-lettered, then an operator lists them, replays one to done for its owner, and purges the other', async () => {
      const ids: string[] = [];
      for (const a of [6, 8]) ids.push((await http(`${gateway.url}/add/${a}/7`, { headers: ALICE })).body.id);
      // A consumer that takes the tasks and dies each time: with one delivery allowed, the next claim dead-letters them.
      const crashing = backend.open({ maxDeliveries: 1 });
      await waitFor(async () => {
        await crashing.claim('add', 'crashing', 10, { leaseMs: 50, blockMs: 0 });
        const tickets = await Promise.all(ids.map(async (id) => (await http(`${gateway.url}/v1/results/${id}`, { headers: ALICE })).body.status));
        return tickets.every((s) => s === 'failed') ? true : undefined;
      }, 'both tasks to be dead-lettered');

      const listed = await http(`${gateway.url}/v1/admin/dead-letters?operation=add`, { headers: OPERATOR });
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(new Set(listed.body.deadLetters.map((l: { id: string }) => l.id)), new Set(ids));
      const first = listed.body.deadLetters.find((l: { id: string }) => l.id === ids[0]);
      assert.deepEqual([first.operation, first.client, first.deliveries, first.num1, first.num2], ['add', 'alice', 1, 6, 7]);
      assert.match(first.reason, /deliveries/);
      assert.ok(!Number.isNaN(Date.parse(first.deadAt)));
      assert.deepEqual((await http(`${open.url}/v1/admin/dead-letters?operation=subtract`, { headers: OPERATOR })).body.deadLetters, []);

      const replayed = await http(`${gateway.url}/v1/admin/dead-letters/${ids[0]}/replay`, { method: 'POST', headers: OPERATOR });
      assert.deepEqual([replayed.status, replayed.body], [200, { id: ids[0], status: 'queued' }]);
      assert.equal((await http(`${gateway.url}/v1/results/${ids[0]}`, { headers: ALICE })).body.status, 'queued');
      const consumer = startConsumer({
        queue: backend.open(), operation: 'add', consumer: 'add-healthy', leaseMs: 5000, logger: silentLogger(),
        handler: (task) => ({ ok: true, result: compute('add', task.num1!, task.num2!) }),
      });
      try {
        const ticket = (await http(`${gateway.url}/v1/results/${ids[0]}?wait=10`, { headers: ALICE })).body;
        assert.deepEqual([ticket.id, ticket.status, ticket.result], [ids[0], 'done', 13]);
      } finally {
        await consumer.stop();
      }
      const pending = (await http(`${gateway.url}/pending_results`, { headers: ALICE })).body.results;
      assert.deepEqual(pending.map((t: { id: string; status: string }) => [t.id, t.status]), [[ids[1], 'failed'], [ids[0], 'done']]);

      const purged = await http(`${gateway.url}/v1/admin/dead-letters/${ids[1]}`, { method: 'DELETE', headers: OPERATOR });
      assert.equal(purged.status, 204);
      assert.deepEqual((await http(`${gateway.url}/v1/admin/dead-letters`, { headers: OPERATOR })).body.deadLetters, []);
      const again = await http(`${gateway.url}/v1/admin/dead-letters/${ids[1]}`, { method: 'DELETE', headers: OPERATOR });
      assert.deepEqual([again.status, again.body.error.code], [404, 'NOT_FOUND']);
      assert.equal((await http(`${gateway.url}/v1/admin/dead-letters/nope/replay`, { method: 'POST', headers: OPERATOR })).status, 404);
    });

    test('when a client key, a wrong key or no key calls an operator route, then it is refused with 403 or 401', async () => {
      const routes: [string, string][] = [['GET', '/v1/admin/dead-letters'], ['POST', '/v1/admin/dead-letters/x/replay'], ['DELETE', '/v1/admin/dead-letters/x']];
      for (const [method, path] of routes) {
        const client = await http(`${gateway.url}${path}`, { method, headers: ALICE });
        assert.deepEqual([client.status, client.body.error.code], [403, 'FORBIDDEN'], `${method} ${path}`);
        const wrong = await http(`${gateway.url}${path}`, { method, headers: { authorization: 'Bearer guess' } });
        assert.deepEqual([wrong.status, wrong.body.error.code], [401, 'UNAUTHENTICATED']);
        const none = await http(`${open.url}${path}`, { method });
        assert.deepEqual([none.status, none.body.error.code], [401, 'UNAUTHENTICATED']);
      }
      // On a client route an operator key is a client of its own: it sees none of alice's tickets.
      const own = await http(`${gateway.url}/v1/results`, { headers: OPERATOR });
      assert.deepEqual([own.status, own.body.results], [200, []]);
    });
  });
}
