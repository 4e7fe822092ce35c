/**
 * Generated malformed input against the real gateway (in front of real gRPC services): whatever
 * arrives, the answer is a 2xx or a 4xx JSON error of the contract — never a 5xx, never a crash —
 * and the gateway still answers afterwards. FUZZ_RUNS scales the run (`npm run fuzz`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_TABLE } from '../../src/shared/errors.js';
import { http, type TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const share = (fraction: number) => Math.max(100, Math.round(RUNS * fraction));
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

let gateway: TestGateway;
let inputs = 0;

withGateway({ stopped: ['multiply'], apiKeys: {}, rateLimit: undefined }, (g) => (gateway = g));

type Injected = Awaited<ReturnType<TestGateway['app']['inject']>>;

function assertContractAnswer(reply: Injected, what: string): void {
  inputs += 1;
  assert.ok(reply.statusCode < 500, `${what} → ${reply.statusCode} ${reply.body.slice(0, 300)}`);
  if (reply.statusCode >= 400 && reply.body !== '') {
    assert.match(String(reply.headers['content-type']), /application\/json/, what);
    const body = JSON.parse(reply.body);
    assert.ok(Object.hasOwn(ERROR_TABLE, body?.error?.code), `${what} → unknown code ${reply.body.slice(0, 200)}`);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(!/\n\s+at /.test(reply.body), `${what} leaks a stack trace`);
  }
}

/** Operand-like text: numbers, near-numbers, words, unicode, escapes, and long runs. */
const operand = fc.oneof(
  fc.double().map(String),
  fc.integer().map(String),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('', 'NaN', 'Infinity', '-Infinity', '1e999', '0x1f', '1_0', '1,5', '+-1', '.', '..', '%00', '%zz', '%E0%A4%A', '1e', '١٢'),
  fc.stringMatching(/^[-+]?\d{0,400}(\.\d{0,5})?(e[-+]?\d{1,4})?$/),
);
const segment = operand.map((s) => (Math.random() < 0.5 ? encodeURIComponent(s) : s.replace(/[/?#\s]/g, '')));

test('when operation routes get generated operands and operations, then every answer is a contract answer', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.constantFrom('add', 'subtract', 'multiply', 'divide'), fc.string({ maxLength: 12 })), segment, segment, async (op, a, b) => {
      const url = `/${encodeURIComponent(op)}/${a}/${b}`;
      assertContractAnswer(await gateway.app.inject({ method: 'GET', url }), `GET ${url}`);
    }),
    { numRuns: share(0.4), seed: SEED },
  );
});

test('when /v1/evaluate gets generated bodies and content types, then every answer is a contract answer', async () => {
  const expressionText = fc.stringMatching(/^[\d.eE+\-*/() \t]{0,60}$/);
  const body = fc.oneof(
    fc.json(),
    fc.string({ maxLength: 100 }),
    expressionText.map((expression) => JSON.stringify({ expression })),
    fc.anything().map((value) => JSON.stringify({ expression: value }) ?? 'null'),
    fc.constantFrom('{"expression":', '{"expression":"1+1"}}', '\u0000', '[', '{"__proto__":{"x":1},"expression":"1"}', `{"expression":"${'('.repeat(70)}1${')'.repeat(70)}"}`),
  );
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', '', 'application/json; charset=latin1');
  await fc.assert(
    fc.asyncProperty(body, contentType, async (payload, type) => {
      const headers = type ? { 'content-type': type } : {};
      assertContractAnswer(await gateway.app.inject({ method: 'POST', url: '/v1/evaluate', payload, headers }), `POST ${type} ${payload.slice(0, 80)}`);
    }),
    { numRuns: share(0.3), seed: SEED },
  );
});

test('when requests carry generated headers, methods and paths, then every answer is a contract answer', async () => {
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
  const path = fc.oneof(
    fc.constantFrom('/add/1/2', '/v1/results/abc', '/pending_results', '/v1/status', '/readyz', '/v1/evaluate', '/nope', '/v1/results/', '/%', '/docs/../../etc/passwd'),
    fc.webPath(),
    fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
  );
  const headerValue = fc.string({ maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
  await fc.assert(
    fc.asyncProperty(method, path, headerValue, headerValue, headerValue, fc.option(fc.webQueryParameters()), async (m, p, key, id, auth, query) => {
      const rooted = p.startsWith('/') ? p : `/${p}`;
      const url = query ? `${rooted}?${query}` : rooted;
      const headers = { 'idempotency-key': key, 'x-request-id': id, authorization: auth };
      assertContractAnswer(await gateway.app.inject({ method: m as 'GET', url, headers }), `${m} ${url}`);
    }),
    { numRuns: share(0.3), seed: SEED },
  );
});

test('when the fuzzing is over, then at least the configured number of inputs were tried and the gateway still answers over HTTP', async () => {
  assert.ok(inputs >= RUNS, `${inputs} inputs`);
  const reply = await http(`${gateway.url}/add/6/7`);
  assert.deepEqual([reply.status, reply.body.result], [200, 13]);
});
