/** The real gateway over HTTP, in front of real gRPC services on real sockets and a real queue. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, type TestGateway } from '../helpers/gateway.js';

const assertError = (reply: { status: number; body: any; headers: Headers }, status: number, code: string) => {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body?.error?.code, code);
  assert.equal(typeof reply.body.error.message, 'string');
  assert.match(reply.headers.get('content-type') ?? '', /application\/json/);
};

describe('gateway, direct path', () => {
  let services: TestServices;
  let gateway: TestGateway;
  before(async () => {
    services = await startServices();
    gateway = await startGateway({ targets: services.targets });
  });
  after(async () => {
    await gateway.close();
    await services.close();
  });

  const ok: Array<[string, string, string, number]> = [
    ['add', '6', '7', 13], ['subtract', '6', '7', -1], ['multiply', '6', '7', 42], ['divide', '7', '2', 3.5],
    ['add', '-1.5', '2.25', 0.75], ['multiply', '1e3', '2E-3', 2], ['divide', '-9', '.5', -18], ['subtract', '+3', '3', 0],
  ];
  for (const [op, a, b, result] of ok) {
    test(`when GET /${op}/${a}/${b}, then 200 with the original body shape and result ${result}`, async () => {
      const reply = await http(`${gateway.url}/${op}/${a}/${b}`);
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), ['id', 'operation', 'result']);
      assert.equal(reply.body.operation, op);
      assert.equal(reply.body.result, result);
      assert.match(reply.body.id, /^[0-9a-f-]{36}$/);
    });
  }

  for (const bad of ['abc', 'NaN', 'Infinity', '1e999', '0x10', '%20', '1%2C5']) {
    test(`when an operand is ${JSON.stringify(bad)}, then 400 INVALID_ARGUMENT`, async () => {
      assertError(await http(`${gateway.url}/add/${bad}/1`), 400, 'INVALID_ARGUMENT');
      assertError(await http(`${gateway.url}/add/1/${bad}`), 400, 'INVALID_ARGUMENT');
    });
  }

  test('when an operand is empty, then 400 INVALID_ARGUMENT', async () => {
    assertError(await http(`${gateway.url}/add//3`), 400, 'INVALID_ARGUMENT');
    assertError(await http(`${gateway.url}/divide/3/`), 400, 'INVALID_ARGUMENT');
  });

  test('when the operation is unknown, then 400 INVALID_ARGUMENT', async () => {
    assertError(await http(`${gateway.url}/power/2/3`), 400, 'INVALID_ARGUMENT');
  });

  test('when dividing by zero, then 422 DOMAIN_ERROR', async () => {
    assertError(await http(`${gateway.url}/divide/1/0`), 422, 'DOMAIN_ERROR');
    assertError(await http(`${gateway.url}/divide/0/-0`), 422, 'DOMAIN_ERROR');
  });

  test('when the result is not finite, then 422 DOMAIN_ERROR', async () => {
    assertError(await http(`${gateway.url}/multiply/1e308/10`), 422, 'DOMAIN_ERROR');
    assertError(await http(`${gateway.url}/add/1.7e308/1.7e308`), 422, 'DOMAIN_ERROR');
  });

  test('when the route or the ticket is unknown, then 404 NOT_FOUND in JSON', async () => {
    assertError(await http(`${gateway.url}/nope`), 404, 'NOT_FOUND');
    assertError(await http(`${gateway.url}/add/1/2/3`), 404, 'NOT_FOUND');
    assertError(await http(`${gateway.url}/v1/results/00000000-0000-0000-0000-000000000000`), 404, 'NOT_FOUND');
    assertError(await http(`${gateway.url}/add/1/2`, { method: 'DELETE' }), 405, 'METHOD_NOT_ALLOWED');
  });

  test('when the URL has broken percent-encoding, then 400 in JSON, not a crash', async () => {
    const reply = await http(`${gateway.url}/add/%E0%A4%A/1`);
    assert.ok(reply.status === 400 || reply.status === 404, String(reply.status));
    assert.ok(reply.body?.error?.code);
  });

  test('when an expression is posted, then 200 with its value', async () => {
    const reply = await http(`${gateway.url}/v1/evaluate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression: '(6+7)*3 - 8/2' }),
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.result, 35);
    assert.equal(reply.body.expression, '(6+7)*3 - 8/2');
  });

  test('when the body is malformed, the wrong type or missing a field, then 400 INVALID_ARGUMENT', async () => {
    const post = (body: string, type = 'application/json') =>
      http(`${gateway.url}/v1/evaluate`, { method: 'POST', headers: { 'content-type': type }, body });
    assertError(await post('{"expression": '), 400, 'INVALID_ARGUMENT');
    assertError(await post('{}'), 400, 'INVALID_ARGUMENT');
    assertError(await post('{"expression": 42}'), 400, 'INVALID_ARGUMENT');
    assertError(await post('[1,2]'), 400, 'INVALID_ARGUMENT');
    assertError(await post('{"expression": "2**3"}'), 400, 'INVALID_ARGUMENT');
    assertError(await post('{"expression": "1/0"}'), 422, 'DOMAIN_ERROR');
    assertError(await post('expression=1', 'application/x-www-form-urlencoded'), 400, 'INVALID_ARGUMENT');
  });

  test('when the body is over 16 KiB, then 413 PAYLOAD_TOO_LARGE', async () => {
    const reply = await http(`${gateway.url}/v1/evaluate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression: '1+'.repeat(9000) + '1' }),
    });
    assertError(reply, 413, 'PAYLOAD_TOO_LARGE');
  });

  test('when X-Request-Id is sent, then it is returned; when absent, one is generated', async () => {
    const given = await http(`${gateway.url}/add/1/2`, { headers: { 'x-request-id': 'trace-abc-123' } });
    assert.equal(given.headers.get('x-request-id'), 'trace-abc-123');
    const generated = await http(`${gateway.url}/add/1/2`);
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const unsafe = await http(`${gateway.url}/add/1/2`, { headers: { 'x-request-id': 'x'.repeat(500) } });
    assert.notEqual(unsafe.headers.get('x-request-id'), 'x'.repeat(500));
  });

  test('when health and readiness are asked, then both answer 200 and readiness lists every service', async () => {
    assert.equal((await http(`${gateway.url}/healthz`)).status, 200);
    const ready = await http(`${gateway.url}/readyz`);
    assert.equal(ready.status, 200);
    for (const op of ['add', 'subtract', 'multiply', 'divide', 'evaluate']) assert.equal(ready.body.services[op].serving, true, op);
  });

  test('when /v1/status is asked, then it shows each service with its replicas and queue', async () => {
    const status = await http(`${gateway.url}/v1/status`);
    assert.equal(status.status, 200);
    assert.equal(status.body.services.add.replicas[0].health, 'SERVING');
    assert.equal(status.body.services.add.queue.depth, 0);
  });
});

describe('gateway, API keys', () => {
  let services: TestServices;
  let gateway: TestGateway;
  before(async () => {
    services = await startServices();
    gateway = await startGateway({ targets: services.targets, apiKeys: { 'key-alice': 'alice', 'key-bob': 'bob' } });
  });
  after(async () => {
    await gateway.close();
    await services.close();
  });

  test('when no key or a wrong key is sent, then 401 UNAUTHENTICATED; health stays public', async () => {
    assertError(await http(`${gateway.url}/add/1/2`), 401, 'UNAUTHENTICATED');
    assertError(await http(`${gateway.url}/add/1/2`, { headers: { authorization: 'Bearer nope' } }), 401, 'UNAUTHENTICATED');
    assert.equal((await http(`${gateway.url}/healthz`)).status, 200);
  });

  test('when a valid key is sent as Bearer or X-API-Key, then the request is served', async () => {
    assert.equal((await http(`${gateway.url}/add/1/2`, { headers: { authorization: 'Bearer key-alice' } })).body.result, 3);
    assert.equal((await http(`${gateway.url}/add/1/2`, { headers: { 'x-api-key': 'key-bob' } })).body.result, 3);
  });
});
