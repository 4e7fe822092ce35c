/**
 * Webhooks against real gateways (two, on one store), real gRPC services, each real queue backend
 * and a receiver of the test's own on a real socket: signed, retried until acknowledged, given up
 * into a dead letter of their own, and refused at request time for a host not allowed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compute } from '../../src/domain/compute.js';
import { startConsumer, type Consumer } from '../../src/queue/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import { BACKENDS, startBackend, type TestBackend } from '../helpers/backends.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { startServices, type TestServices } from '../helpers/services.js';

const SECRET = 'test-webhook-secret';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly answered: number;
}

/** Answers 500 to the first `failFirst` POSTs of each path, then 200; `/never` always 500. */
async function startReceiver(failFirst: number): Promise<{ server: Server; port: number; received: Received[] }> {
  const received: Received[] = [];
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      const answered = path === '/never' || n <= failFirst ? 500 : 200;
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString(), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, received };
}

function verify(headers: IncomingHttpHeaders, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(headers['calcmesh-signature']));
  return match !== null && createHmac('sha256', SECRET).update(`${match[1]}.${body}`).digest('hex') === match[2];
}

for (const name of BACKENDS) {
  describe(`webhooks on ${name}`, () => {
    let backend: TestBackend;
    let services: TestServices;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let one: TestGateway;
    let two: TestGateway;
    let noSecret: TestGateway;
    let consumer: Consumer;

    before(async () => {
      backend = await startBackend(name);
      services = await startServices();
      await services.stop('add');
      receiver = await startReceiver(2);
      const webhooks = { secret: SECRET, allow: [`127.0.0.1:${receiver.port}`], maxAttempts: 3, retryMs: 50, timeoutMs: 300 };
      one = await startGateway({ targets: services.targets, queue: backend.open(), config: { webhooks } });
      two = await startGateway({ targets: services.targets, queue: backend.open(), config: { webhooks } });
      noSecret = await startGateway({ targets: services.targets, queue: backend.open(), config: { webhooks: { ...webhooks, secret: undefined } } });
      consumer = startConsumer({
        queue: backend.open(), operation: 'add', consumer: 'add-test', leaseMs: 5000, logger: silentLogger(),
        handler: (task) => ({ ok: true, result: compute('add', task.num1!, task.num2!) }),
      });
    });
    after(async () => {
      await consumer?.stop();
      for (const gateway of [one, two, noSecret]) await gateway?.close();
      await new Promise((resolve) => receiver?.server.close(resolve));
      await services?.close();
      await backend?.close();
    });

    test('when a receiver fails twice then succeeds, then it gets one verified delivery of the ticket, retried under one delivery id, and nothing is pending', async () => {
      const reply = await http(`${one.url}/add/6/7`, { headers: { 'callback-url': `http://127.0.0.1:${receiver.port}/flaky` } });
      assert.equal(reply.status, 202, reply.text);
      const attempts = await waitFor(() => {
        const got = receiver.received.filter((r) => r.path === '/flaky');
        return got.some((r) => r.answered === 200) ? got : undefined;
      }, 'a successful delivery');
      assert.ok(attempts.length >= 3, `two failures, then the success: ${attempts.length}`);
      const delivered = attempts.filter((r) => r.answered === 200);
      assert.ok(delivered.length <= 2, 'at most a duplicate');
      assert.equal(new Set(attempts.map((r) => r.headers['calcmesh-delivery-id'])).size, 1, 'one delivery id throughout');
      for (const attempt of attempts) assert.ok(verify(attempt.headers, attempt.body), 'signed with CALC_WEBHOOK_SECRET');
      const ticket = JSON.parse(delivered[0]!.body);
      assert.deepEqual([ticket.id, ticket.status, ticket.result], [reply.body.id, 'done', 13]);
      assert.equal(ticket.client, undefined);
      assert.equal(delivered[0]!.headers['content-type'], 'application/json');
      // Webhooks are its channel: not in /pending_results; and after the ack nothing is left to send.
      assert.deepEqual((await http(`${two.url}/pending_results`)).body.results.filter((t: { id: string }) => t.id === reply.body.id), []);
      await waitFor(async () => ((await http(`${one.url}/v1/status`)).body.webhooks.pending === 0 ? true : undefined), 'the delivery to be acknowledged');
    });

    test('when a receiver never succeeds, then the delivery is given up after its attempts into a webhook dead letter, shown in status and metrics', async () => {
      const reply = await http(`${two.url}/v1/evaluate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ expression: '2*3', callback: `http://127.0.0.1:${receiver.port}/never` }),
      });
      // The evaluator and multiply are up: answered at once, and only queued work is posted.
      assert.equal(reply.status, 200, reply.text);
      const queued = await http(`${two.url}/add/1/1`, { headers: { 'callback-url': `http://127.0.0.1:${receiver.port}/never` } });
      assert.equal(queued.status, 202);
      const status = await waitFor(async () => {
        const body = (await http(`${one.url}/v1/status`)).body;
        return body.webhooks.deadLetters === 1 ? body : undefined;
      }, 'the webhook dead letter');
      assert.deepEqual(status.webhooks, { enabled: true, pending: 0, deadLetters: 1 });
      assert.equal(receiver.received.filter((r) => r.path === '/never').length, 3);
      assert.match((await http(`${one.url}/metrics`)).text, /^calcmesh_webhook_dead_letters 1$/m);
    });

    test('when a Callback-Url names a host not allowed, or webhooks are off, then the request is refused with 400 before anything is queued', async () => {
      for (const url of ['http://169.254.169.254/latest', `http://127.0.0.1:${receiver.port + 1}/x`, 'file:///etc/passwd', 'not a url', `http://user:pw@127.0.0.1:${receiver.port}/`]) {
        const reply = await http(`${one.url}/add/1/2`, { headers: { 'callback-url': url } });
        assert.equal(reply.status, 400, url);
        assert.equal(reply.body.error.code, 'INVALID_ARGUMENT');
      }
      const body = await http(`${one.url}/v1/evaluate`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression: '1+1', callback: 'http://10.0.0.1/' }),
      });
      assert.equal(body.status, 400);
      const off = await http(`${noSecret.url}/add/1/2`, { headers: { 'callback-url': `http://127.0.0.1:${receiver.port}/ok` } });
      assert.equal(off.status, 400);
      assert.match(off.body.error.message, /webhooks are off/);
      assert.equal((await http(`${noSecret.url}/v1/status`)).body.webhooks.enabled, false);
    });
  });
}
