/** API keys, per-client ownership, rate limits and size limits: every refusal is the contract's JSON. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { http, type TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

const alice = { authorization: 'Bearer key-alice' };
const bob = { 'x-api-key': 'key-bob' };

describe('clients and their results', () => {
  let gateway: TestGateway;
  const logLines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { logLines.push(String(chunk)); done(); } });
  withGateway({ stopped: ['multiply'], apiKeys: { 'key-alice': 'alice', 'key-bob': 'bob' }, logger: pino({ level: 'debug' }, sink) }, (g) => (gateway = g));

  test("when bob asks for alice's ticket or pending results, then he gets 404 and nothing of hers", async () => {
    const ticket = await http(`${gateway.url}/multiply/2/3`, { headers: alice });
    assert.equal(ticket.status, 202);
    const foreign = await http(`${gateway.url}/v1/results/${ticket.body.id}`, { headers: bob });
    assert.deepEqual([foreign.status, foreign.body.error.code], [404, 'NOT_FOUND']);
    assert.equal((await http(`${gateway.url}/v1/results/${ticket.body.id}`, { headers: alice })).body.status, 'queued');
    assert.deepEqual((await http(`${gateway.url}/pending_results`, { headers: bob })).body.results, []);
  });

  test('when two clients send the same Idempotency-Key, then each gets its own request and id', async () => {
    const a = await http(`${gateway.url}/add/1/1`, { headers: { ...alice, 'idempotency-key': 'shared' } });
    const b = await http(`${gateway.url}/add/2/2`, { headers: { ...bob, 'idempotency-key': 'shared' } });
    assert.deepEqual([a.status, a.body.result, b.status, b.body.result], [200, 2, 200, 4]);
    assert.notEqual(a.body.id, b.body.id);
  });

  test('when keys are used, then no log line contains one', () => {
    assert.ok(logLines.length > 0);
    assert.ok(!logLines.some((line) => line.includes('key-alice') || line.includes('key-bob')));
  });
});

describe('limits', () => {
  let gateway: TestGateway;
  withGateway({ apiKeys: { 'key-alice': 'alice', 'key-bob': 'bob' }, rateLimit: 5 }, (g) => (gateway = g));

  test('when a client goes over its rate, then 429 RATE_LIMITED with Retry-After, and another client is unaffected', async () => {
    // 40 requests at once against 5 a second: unless they took 8 s, some are over the rate.
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => http(`${gateway.url}/add/${i}/1`, { headers: alice })));
    const limited = replies.filter((r) => r.status === 429);
    assert.ok(limited.length >= 1, `statuses ${replies.map((r) => r.status)}`);
    assert.ok(replies.every((r) => r.status === 200 || r.status === 429), `statuses ${replies.map((r) => r.status)}`);
    assert.equal(limited[0]!.body.error.code, 'RATE_LIMITED');
    assert.match(limited[0]!.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal((await http(`${gateway.url}/add/1/1`, { headers: bob })).status, 200);
    assert.equal((await http(`${gateway.url}/healthz`)).status, 200, 'health is never limited');
  });

  test('when the URL is over 2,048 characters, then 414 URI_TOO_LONG in JSON', async () => {
    const reply = await http(`${gateway.url}/add/${'1'.repeat(3000)}/1`, { headers: bob });
    assert.deepEqual([reply.status, reply.body.error.code], [414, 'URI_TOO_LONG']);
  });

  test('when an operand is long but the URL is not, then 400 INVALID_ARGUMENT', async () => {
    const reply = await http(`${gateway.url}/add/${'1'.repeat(500)}/1`, { headers: { 'x-api-key': 'key-bob' } });
    assert.deepEqual([reply.status, reply.body.error.code], [400, 'INVALID_ARGUMENT']);
  });
});
