/** GET /v1/results against real gateways (two, on one store) and each real queue backend: paged history. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, startBackend, type TestBackend } from '../helpers/backends.js';
import { http, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startServices, type TestServices } from '../helpers/services.js';

const KEYS = { 'alice-key': 'alice', 'bob-key': 'bob' };
const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

for (const name of BACKENDS) {
  describe(`history on ${name}`, () => {
    let backend: TestBackend;
    let services: TestServices;
    let one: TestGateway;
    let two: TestGateway;

    before(async () => {
      backend = await startBackend(name);
      services = await startServices();
      await services.stop('add');
      one = await startGateway({ targets: services.targets, queue: backend.open(), apiKeys: KEYS });
      two = await startGateway({ targets: services.targets, queue: backend.open(), apiKeys: KEYS });
    });
    after(async () => {
      await one?.close();
      await two?.close();
      await services?.close();
      await backend?.close();
    });

    test('when a client pages through its history on either gateway, then every ticket comes once, newest first, and never another client\'s', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const reply = await http(`${(i % 2 ? one : two).url}/add/${i}/1`, as('alice-key'));
        assert.equal(reply.status, 202);
        ids.push(reply.body.id);
      }
      // A direct answer given with an Idempotency-Key is stored too, and listed.
      const direct = await http(`${one.url}/multiply/2/3`, { headers: { ...as('alice-key').headers, 'idempotency-key': 'k1' } });
      assert.equal(direct.status, 200);
      ids.push(direct.body.id);
      await http(`${one.url}/add/100/1`, as('bob-key'));

      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const reply = await http(`${(page % 2 ? one : two).url}/v1/results?limit=3${cursor ? `&cursor=${cursor}` : ''}`, as('alice-key'));
        assert.equal(reply.status, 200, reply.text);
        assert.ok(reply.body.results.length <= 3);
        seen.push(...reply.body.results.map((t: { id: string }) => t.id));
        cursor = reply.body.nextCursor;
        if (!cursor) break;
      }
      assert.equal(seen.length, ids.length);
      assert.deepEqual(new Set(seen), new Set(ids));
      const created = await Promise.all(seen.map(async (id) => Date.parse((await http(`${one.url}/v1/results/${id}`, as('alice-key'))).body.createdAt)));
      assert.deepEqual(created, [...created].sort((a, b) => b - a), 'newest first');

      const queued = await http(`${one.url}/v1/results?status=queued&operation=add`, as('alice-key'));
      assert.equal(queued.body.results.length, 7);
      assert.ok(queued.body.results.every((t: { status: string; operation: string }) => t.status === 'queued' && t.operation === 'add'));
      const done = await http(`${one.url}/v1/results?status=done`, as('alice-key'));
      assert.deepEqual(done.body.results.map((t: { id: string }) => t.id), [direct.body.id]);
      const bobs = await http(`${two.url}/v1/results`, as('bob-key'));
      assert.equal(bobs.body.results.length, 1);
      assert.ok(!ids.includes(bobs.body.results[0].id));
      // Reading history delivers nothing.
      assert.equal((await http(`${one.url}/pending_results`, as('alice-key'))).body.results.length, 0);
    });

    test('when a filter, limit or cursor is malformed, then the answer is a JSON 400', async () => {
      for (const query of ['status=lost', 'operation=modulo', 'limit=0', 'limit=abc', 'limit=100000', 'cursor=%21%21', 'cursor=bm90LWEtY3Vyc29y']) {
        const reply = await http(`${one.url}/v1/results?${query}`, as('alice-key'));
        assert.equal(reply.status, 400, query);
        assert.equal(reply.body.error.code, 'INVALID_ARGUMENT', query);
      }
    });
  });
}
