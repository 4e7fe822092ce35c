import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterSum, http, type TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

let gateway: TestGateway;
withGateway({ deadlineMs: 200 }, (g) => (gateway = g));

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
  const calls = await counterSum(gateway.url, 'calcmesh_grpc_client_calls_total', { operation: 'divide' });
  const again = await http(`${gateway.url}/divide/1/0`, { headers: { 'idempotency-key': 'div0' } });
  assert.deepEqual([first.status, again.status], [422, 422]);
  assert.equal(again.body.error.code, 'DOMAIN_ERROR');
  assert.equal(await counterSum(gateway.url, 'calcmesh_grpc_client_calls_total', { operation: 'divide' }), calls, 'the retry called the divide service again');
});

test('when the key is malformed, then 400 INVALID_ARGUMENT', async () => {
  const reply = await http(`${gateway.url}/add/1/2`, { headers: { 'idempotency-key': 'x'.repeat(300) } });
  assert.equal(reply.status, 400);
  assert.equal(reply.body.error.code, 'INVALID_ARGUMENT');
});

test('when a key whose first request left no outcome is reused for a different request, then 409 CONFLICT at once', async () => {
  const first = await http(`${gateway.url}/add/1/2`, { headers: { 'idempotency-key': 'reused' } });
  assert.equal(first.status, 200);
  const other = await http(`${gateway.url}/add/5/5`, { headers: { 'idempotency-key': 'reused' } });
  assert.deepEqual([other.status, other.body.error.code], [409, 'CONFLICT']);
  // A holder that recorded nothing: the key alone tells the requests apart.
  await gateway.queue.reserveKey('anonymous', 'silent-holder', 'dead-id multiply:2:3');
  const mismatch = await http(`${gateway.url}/add/2/3`, { headers: { 'idempotency-key': 'silent-holder' } });
  assert.deepEqual([mismatch.status, mismatch.body.error.code], [409, 'CONFLICT'], 'not taken over');
});
