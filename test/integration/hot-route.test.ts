/**
 * The hot routes (src/gateway/hot-route.ts) answer GET /{op}/{a}/{b} and POST /v1/evaluate on real sockets before
 * Fastify sees it; `inject()` always takes the Fastify route. Each request here is sent both
 * ways, to the same gateway, and the two answers must be the same: status, body, the headers a
 * client reads. A UUID (ticket ids, generated request ids) is compared by its shape.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const READ_HEADERS = ['content-type', 'location', 'retry-after', 'x-request-id', 'allow'] as const;

interface Seen {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: string;
}

const normal = (text: string | undefined) => text?.replace(UUID, '<uuid>');

async function overSocket(gateway: TestGateway, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Seen> {
  const response = await fetch(`${gateway.url}${path}`, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, headers: Object.fromEntries(READ_HEADERS.map((h) => [h, normal(response.headers.get(h) ?? undefined)])), body: normal(text)! };
}

async function throughFastify(gateway: TestGateway, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Seen> {
  const response = await gateway.app.inject({ method: method as 'GET', url: path, headers, ...(body !== undefined && { payload: body }) });
  const header = (name: string) => {
    const value = response.headers[name];
    return value === undefined ? undefined : normal(String(value));
  };
  return { status: response.statusCode, headers: Object.fromEntries(READ_HEADERS.map((h) => [h, header(h)])), body: normal(response.body)! };
}

/** The same request both ways; returns the socket's answer after checking that the hot route served it. */
async function same(gateway: TestGateway, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Seen> {
  const before = gateway.app.hotRouteServed();
  const hot = await overSocket(gateway, path, headers, method, body);
  assert.equal(gateway.app.hotRouteServed(), before + 1, `the hot route answered ${method} ${path} ${body?.slice(0, 80) ?? ''}`);
  const fastify = await throughFastify(gateway, path, headers, method, body);
  assert.deepEqual(hot, fastify, `${method} ${path} ${JSON.stringify(headers)} ${body?.slice(0, 80) ?? ''}`);
  return hot;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const evaluate = (gateway: TestGateway, body: string, headers: Record<string, string> = JSON_HEADERS) => same(gateway, '/v1/evaluate', headers, 'POST', body);

describe('the hot route, without API keys', () => {
  let gateway: TestGateway;
  withGateway({ stopped: ['multiply'] }, (g) => (gateway = g));

  test('when an operation is answered by its service, then the hot route answers as the Fastify route does', async () => {
    for (const path of ['/add/6/7', '/add/6/7/', '/subtract/1e3/-2.5', '/divide/1/4', '/add/0.1/0.2']) {
      const seen = await same(gateway, path, { 'x-request-id': 'req-1' });
      assert.equal(seen.status, 200, path);
      assert.equal(seen.headers['x-request-id'], 'req-1');
    }
    const generated = await same(gateway, '/add/1/2', { 'x-request-id': 'not a safe id' });
    assert.equal(generated.headers['x-request-id'], '<uuid>', 'an unsafe X-Request-Id is replaced by a UUID');
  });

  test('when an argument or the domain is wrong, then both answer the same JSON error at once', async () => {
    const expected: Array<[string, number, string]> = [
      ['/add/abc/1', 400, 'INVALID_ARGUMENT'],
      ['/add/1/0x10', 400, 'INVALID_ARGUMENT'],
      ['/add/1e400/1', 400, 'INVALID_ARGUMENT'],
      ['/divide/1/0', 422, 'DOMAIN_ERROR'],
      ['/multiply/1e300/1e300', 422, 'DOMAIN_ERROR'],
    ];
    for (const [path, status, code] of expected) {
      const seen = await same(gateway, path);
      assert.equal(seen.status, status, path);
      assert.equal(JSON.parse(seen.body).error.code, code, path);
      assert.equal(seen.headers['content-type'], 'application/json; charset=utf-8');
    }
  });

  test('when the service is down, then both queue the request and answer 202 with a Location', async () => {
    const seen = await same(gateway, '/multiply/2/3');
    assert.equal(seen.status, 202);
    assert.equal(seen.headers.location, '/v1/results/<uuid>');
    assert.equal(JSON.parse(seen.body).status, 'queued');
  });

  test('when an Idempotency-Key or a Callback-Url is sent, then both check it the same way and a retry replays the first answer', async () => {
    const send = () => fetch(`${gateway.url}/add/2/2`, { headers: { 'idempotency-key': 'hot-key-1' } }).then((r) => r.json() as Promise<{ id: string; result: number }>);
    const first = await send();
    assert.equal(first.result, 4);
    assert.deepEqual(await send(), first, 'the retry replays the first answer, id and all');
    assert.equal((await same(gateway, '/add/2/2', { 'idempotency-key': 'x'.repeat(300) })).status, 400);
    assert.equal((await same(gateway, '/add/2/3', { 'idempotency-key': 'hot-key-2' })).status, 200, 'the second use of the key replays (inject)');
    const callback = await same(gateway, '/multiply/2/3', { 'callback-url': 'http://169.254.169.254/latest' });
    assert.equal(callback.status, 400, 'webhooks are off: every callback URL is refused');
  });

  test('when a request is not one the hot route serves as Fastify would, then Fastify answers it', async () => {
    const left: Array<[string, Record<string, string>, string?]> = [
      ['/add/6/7?x=1', {}],
      ['/add/%36/7', {}],
      ['/add/6/7', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }],
      ['/ADD/6/7', {}],
      ['/add//7', {}],
      [`/add/${'1'.repeat(101)}/7`, {}],
      ['/add/6/7', {}, 'HEAD'],
      ['/add/6/7', {}, 'POST'],
    ];
    for (const [path, headers, method] of left) {
      const before = gateway.app.hotRouteServed();
      const socket = await overSocket(gateway, path, headers, method);
      assert.equal(gateway.app.hotRouteServed(), before, `${method ?? 'GET'} ${path} went to Fastify`);
      const fastify = await throughFastify(gateway, path, headers, method);
      // A HEAD answer has no body on the wire; inject() keeps the one Fastify wrote.
      assert.deepEqual(socket, method === 'HEAD' ? { ...fastify, body: '' } : fastify, `${method ?? 'GET'} ${path}`);
    }
  });

  test('when an expression is evaluated, then the hot route answers as the Fastify route does', async () => {
    const done = await evaluate(gateway, JSON.stringify({ expression: '(6+7) - 8/2' }));
    assert.deepEqual([done.status, JSON.parse(done.body).result], [200, 9]);
    const charset = await evaluate(gateway, '{"expression":"1+2"}', { 'content-type': 'Application/JSON; charset=UTF-8', 'x-request-id': 'e-1' });
    assert.deepEqual([charset.status, charset.headers['x-request-id']], [200, 'e-1']);
    const queued = await evaluate(gateway, JSON.stringify({ expression: '2*3' }));
    assert.deepEqual([queued.status, queued.headers.location], [202, '/v1/results/<uuid>'], 'multiply is down: the evaluation is queued');
  });

  test('when an evaluation body is wrong, then both refuse it with the same JSON error', async () => {
    const expected: Array<[string, number, string]> = [
      ['{"expression":', 400, 'INVALID_ARGUMENT'],
      ['{"__proto__":{"x":1},"expression":"1+1"}', 400, 'INVALID_ARGUMENT'],
      ['{"constructor":{"prototype":{"x":1}},"expression":"1+1"}', 400, 'INVALID_ARGUMENT'],
      ['[1]', 400, 'INVALID_ARGUMENT'],
      ['null', 400, 'INVALID_ARGUMENT'],
      ['{}', 400, 'INVALID_ARGUMENT'],
      ['{"expression":42}', 400, 'INVALID_ARGUMENT'],
      [JSON.stringify({ expression: '1+'.repeat(2048) + '1' }), 400, 'INVALID_ARGUMENT'],
      // 4,200 UTF-16 units but 2,100 characters: within maxLength, which counts characters.
      [JSON.stringify({ expression: '😀'.repeat(2100) }), 400, 'INVALID_ARGUMENT'],
      ['{"expression":"1+1","callback":7}', 400, 'INVALID_ARGUMENT'],
      ['{"expression":"1+1","callback":"http://169.254.169.254/"}', 400, 'INVALID_ARGUMENT'],
      ['{"expression":"1+"}', 400, 'INVALID_ARGUMENT'],
      ['{"expression":"1/0"}', 422, 'DOMAIN_ERROR'],
    ];
    for (const [body, status, code] of expected) {
      const seen = await evaluate(gateway, body);
      assert.deepEqual([seen.status, JSON.parse(seen.body).error?.code], [status, code], body.slice(0, 80));
    }
    const badKey = await evaluate(gateway, '{"expression":"1+1"}', { ...JSON_HEADERS, 'idempotency-key': 'x'.repeat(300) });
    assert.equal(badKey.status, 400);
  });

  test('when an evaluation body is not plain JSON of a declared length within the limit, then Fastify answers it', async () => {
    const left: Array<[string, Record<string, string>, string | undefined]> = [
      ['/v1/evaluate', { 'content-type': 'text/plain' }, '{"expression":"1+1"}'],
      ['/v1/evaluate', { 'content-type': 'application/json; charset=latin1' }, '{"expression":"1+1"}'],
      ['/v1/evaluate', JSON_HEADERS, ''],
      ['/v1/evaluate', JSON_HEADERS, JSON.stringify({ expression: '1', pad: 'x'.repeat(17 * 1024) })],
      ['/v1/evaluate/', JSON_HEADERS, '{"expression":"1+1"}'],
      ['/v1/evaluate', { ...JSON_HEADERS, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, '{"expression":"1+1"}'],
    ];
    for (const [path, headers, body] of left) {
      const before = gateway.app.hotRouteServed();
      const socket = await overSocket(gateway, path, headers, 'POST', body);
      assert.equal(gateway.app.hotRouteServed(), before, `POST ${path} ${JSON.stringify(headers)} went to Fastify`);
      assert.deepEqual(socket, await throughFastify(gateway, path, headers, 'POST', body), `POST ${path} ${JSON.stringify(headers)}`);
    }
  });

  test('when the hot route answers, then the HTTP metrics count it under the Fastify route\'s name', async () => {
    const scrape = async () => (await fetch(`${gateway.url}/metrics`).then((r) => r.text())).match(/calcmesh_http_requests_total\{method="GET",route="\/:op\/:a\/:b",status="200"\} (\d+)/)?.[1];
    const before = Number(await scrape());
    await overSocket(gateway, '/add/6/7');
    assert.equal(Number(await scrape()), before + 1);
  });
});

describe('the hot route, with API keys', () => {
  let gateway: TestGateway;
  withGateway({ apiKeys: { 'key-alice': 'alice' }, authFailuresPerMin: 3 }, (g) => (gateway = g));

  test('when a key is right, wrong or missing, then both answer the same', async () => {
    assert.equal((await same(gateway, '/add/1/2', { authorization: 'Bearer key-alice' })).status, 200);
    assert.equal((await same(gateway, '/add/1/2', { 'x-api-key': 'key-alice' })).status, 200);
    assert.equal((await same(gateway, '/add/1/2')).status, 401);
  });

  // Last: it blocks the loopback address for the rest of the minute.
  test('when an address guessed too many keys, then both refuse it 429 with Retry-After, even with the right key', async () => {
    for (let i = 0; i < 3; i++) await overSocket(gateway, '/add/1/2', { authorization: `Bearer guess-${i}` });
    const seen = await same(gateway, '/add/1/2', { authorization: 'Bearer key-alice' });
    assert.equal(seen.status, 429);
    assert.match(seen.headers['retry-after'] ?? '', /^\d+$/);
  });
});
