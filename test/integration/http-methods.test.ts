/**
 * Methods a route does not serve never run it: HEAD of a route with side effects, a wrong
 * method on a known path, CONNECT. On both queue backends (a real redis-server and SQLite).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { loadProto } from '../../src/shared/proto.js';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

for (const backend of ['sqlite', 'redis'] as const) {
  describe(`HTTP methods (${backend})`, () => {
    let services: TestServices;
    let gateway: TestGateway;
    let redis: TestRedis | undefined;
    before(async () => {
      if (backend === 'redis') redis = await startRedis();
      services = await startServices();
      await services.stop('multiply');
      gateway = await startGateway({ targets: services.targets, redisUrl: redis?.url });
    });
    after(async () => {
      await gateway?.close();
      await services?.close();
      await redis?.stop();
    });

    /** A queued multiply completed through the real queue, as a service would. */
    async function completedTicket(): Promise<string> {
      const queued = await http(`${gateway.url}/multiply/6/7`);
      assert.equal(queued.status, 202);
      const [task] = await waitFor(async () => {
        const claimed = await gateway.queue.claim('multiply', 'test', 10, { leaseMs: 10_000, blockMs: 0 });
        return claimed.length > 0 ? claimed : undefined;
      }, 'the queued task to be claimable');
      await gateway.queue.complete('multiply', [{ task: task!, outcome: { ok: true, result: 42 } }]);
      return queued.body.id;
    }

    test('when HEAD /pending_results, then 405 with Allow: GET, and the next GET still delivers the result', async () => {
      const id = await completedTicket();
      const head = await http(`${gateway.url}/pending_results`, { method: 'HEAD' });
      assert.equal(head.status, 405);
      assert.equal(head.headers.get('allow'), 'GET');
      const pending = await http(`${gateway.url}/pending_results`);
      assert.deepEqual(pending.body.results.map((r: { id: string }) => r.id), [id]);
    });

    test('when HEAD /multiply/2/3 while multiply is down, then 405 and nothing is queued', async () => {
      const before = (await gateway.queue.stats(['multiply'])).multiply!.depth;
      const head = await http(`${gateway.url}/multiply/2/3`, { method: 'HEAD' });
      assert.deepEqual([head.status, head.headers.get('allow')], [405, 'GET']);
      assert.equal((await gateway.queue.stats(['multiply'])).multiply!.depth, before);
    });

    test('when HEAD /v1/results/{id} or /healthz, then it is answered as a read (200), and the result is still delivered', async () => {
      const id = await completedTicket();
      assert.equal((await http(`${gateway.url}/v1/results/${id}`, { method: 'HEAD' })).status, 200);
      assert.equal((await http(`${gateway.url}/healthz`, { method: 'HEAD' })).status, 200);
      const pending = await http(`${gateway.url}/pending_results`);
      assert.deepEqual(pending.body.results.map((r: { id: string }) => r.id), [id]);
    });
  });
}

describe('HTTP methods, whatever the backend', () => {
  let services: TestServices;
  let gateway: TestGateway;
  before(async () => {
    services = await startServices();
    gateway = await startGateway({ targets: services.targets });
  });
  after(async () => {
    await gateway?.close();
    await services?.close();
  });

  test('when a known path is called with a method it does not serve, then 405 METHOD_NOT_ALLOWED in JSON with Allow', async () => {
    for (const [method, path, allow] of [['DELETE', '/add/1/2', 'GET'], ['POST', '/pending_results', 'GET'], ['GET', '/v1/evaluate', 'POST'], ['PUT', '/healthz', 'GET, HEAD']] as const) {
      const reply = await http(`${gateway.url}${path}`, { method });
      assert.deepEqual([reply.status, reply.body?.error?.code, reply.headers.get('allow')], [405, 'METHOD_NOT_ALLOWED', allow], `${method} ${path}`);
    }
  });

  test('when an unknown path is called with any method, then still 404 NOT_FOUND', async () => {
    const reply = await http(`${gateway.url}/nope`, { method: 'POST' });
    assert.deepEqual([reply.status, reply.body?.error?.code], [404, 'NOT_FOUND']);
  });

  test('when a client sends CONNECT, then it gets a JSON 405 answer instead of a closed connection', async () => {
    const answer = await rawExchange(gateway.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 405 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.code, 'METHOD_NOT_ALLOWED');
  });
});

describe('an upstream that answers with a huge error message', () => {
  let server: grpc.Server;
  let gateway: TestGateway;
  let services: TestServices;
  before(async () => {
    services = await startServices();
    server = new grpc.Server();
    const huge = 'x'.repeat(60 * 1024);
    const fail = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.PERMISSION_DENIED, details: huge });
    server.addService(loadProto().Calculator.service, { Add: fail, Subtract: fail, Multiply: fail, Divide: fail });
    // Healthy as far as grpc.health.v1 goes, so the gateway calls it rather than queueing.
    new HealthImplementation({ '': 'SERVING', 'calculator.Calculator': 'SERVING' }).addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    gateway = await startGateway({ targets: { ...services.targets, add: [`127.0.0.1:${port}`] } });
  });
  after(async () => {
    await gateway?.close();
    server?.forceShutdown();
    await services?.close();
  });

  test('when a service answers a 60 KiB message, then the 502 carries at most 1 KiB of it', async () => {
    const reply = await http(`${gateway.url}/add/1/2`);
    assert.deepEqual([reply.status, reply.body?.error?.code], [502, 'UPSTREAM_ERROR']);
    assert.ok(Buffer.byteLength(reply.body.error.message) <= 1024, `message of ${Buffer.byteLength(reply.body.error.message)} bytes`);
    assert.match(reply.body.error.message, /PERMISSION_DENIED/);
  });
});

/** Writes raw bytes to the gateway and returns everything it answers until it closes. */
function rawExchange(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('error', (error) => (data ? resolve(data) : reject(error)));
    socket.on('close', () => resolve(data));
  });
}
