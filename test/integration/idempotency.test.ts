import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, type TestGateway } from '../helpers/gateway.js';

let services: TestServices;
let gateway: TestGateway;
before(async () => {
  services = await startServices();
  gateway = await startGateway({ targets: services.targets, deadlineMs: 200 });
});
after(async () => {
  await gateway.close();
  await services.close();
});

test('when a key is sent concurrently many times, then every answer carries the same id and result', async () => {
  const replies = await Promise.all(
    Array.from({ length: 10 }, () => http(`${gateway.url}/multiply/6/7`, { headers: { 'idempotency-key': 'burst' } })),
  );
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([200]));
  assert.equal(new Set(replies.map((r) => r.body.id)).size, 1);
  assert.deepEqual(new Set(replies.map((r) => r.body.result)), new Set([42]));
});

test('when a key is held by a request that died before recording anything, then a retry takes it over under the same id', async () => {
  assert.equal(await gateway.queue.reserveKey('anonymous', 'orphan', 'the-dead-holder'), undefined);
  const reply = await http(`${gateway.url}/add/1/2`, { headers: { 'idempotency-key': 'orphan' } });
  assert.equal(reply.status, 200, reply.text);
  assert.deepEqual([reply.body.id, reply.body.result], ['the-dead-holder', 3]);
  const again = await http(`${gateway.url}/add/1/2`, { headers: { 'idempotency-key': 'orphan' } });
  assert.deepEqual([again.body.id, again.body.result], ['the-dead-holder', 3]);
});

test('when a domain error is answered under a key, then the retry replays the same error without computing', async () => {
  const first = await http(`${gateway.url}/divide/1/0`, { headers: { 'idempotency-key': 'div0' } });
  const again = await http(`${gateway.url}/divide/1/0`, { headers: { 'idempotency-key': 'div0' } });
  assert.deepEqual([first.status, again.status], [422, 422]);
  assert.equal(again.body.error.code, 'DOMAIN_ERROR');
});

test('when the key is malformed, then 400 INVALID_ARGUMENT', async () => {
  const reply = await http(`${gateway.url}/add/1/2`, { headers: { 'idempotency-key': 'x'.repeat(300) } });
  assert.equal(reply.status, 400);
  assert.equal(reply.body.error.code, 'INVALID_ARGUMENT');
});
