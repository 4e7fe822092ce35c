/**
 * Honest readiness with a real redis-server that answers PING but refuses writes (`maxmemory`
 * tiny, `noeviction`), and queue failures in health and metrics routes that leave a log line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Gauge } from 'prom-client';
import { openQueue } from '../../src/queue/index.js';
import { createServiceMetrics, serveMetrics } from '../../src/services/metrics.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

describe('readiness when Redis refuses writes', () => {
  let services: TestServices;
  let gateway: TestGateway;
  let redis: TestRedis;
  const logLines: string[] = [];
  before(async () => {
    redis = await startRedis();
    services = await startServices();
    await services.stop('multiply');
    const sink = new Writable({ write(chunk, _enc, done) { logLines.push(String(chunk)); done(); } });
    gateway = await startGateway({ targets: services.targets, redisUrl: redis.url, logger: pino({ level: 'warn' }, sink) });
  });
  after(async () => {
    await gateway?.close();
    await services?.close();
    await redis?.stop();
  });

  test('when Redis is at maxmemory with noeviction and a service is down, then /readyz is 503 and /v1/status says why', async () => {
    assert.equal((await http(`${gateway.url}/readyz`)).status, 200);
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      assert.equal((await admin.ping()), 'PONG', 'Redis still answers PING');
      assert.equal((await http(`${gateway.url}/multiply/2/3`)).status, 503, 'an enqueue is refused');
      const ready = await waitFor(async () => {
        const reply = await http(`${gateway.url}/readyz`);
        return reply.status === 503 ? reply : undefined;
      }, '/readyz to report the refused writes');
      assert.equal(ready.body.queue.ok, false);
      const status = await http(`${gateway.url}/v1/status`);
      assert.equal(status.body.queue.ok, false);
      assert.match(status.body.queue.reason, /^the queue refuses writes: /);
      assert.ok(logLines.some((line) => line.includes('queue readiness probe failed')), 'the failure is logged');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
    await waitFor(async () => ((await http(`${gateway.url}/readyz`)).status === 200 ? true : undefined), '/readyz to recover');
  });

  test('when Redis refuses writes and the gateway has an outbox, then /readyz is 200, /v1/status says it is journaling, and the probe journals nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'calcmesh-ready-outbox-'));
    const queue = openQueue({ redisUrl: redis.url, dataDir: dir, resultTtlS: 3600, maxDeliveries: 5, outbox: { max: 100 } });
    const journaling = await startGateway({ targets: services.targets, queue });
    try {
      const admin = new Redis(redis.url);
      try {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        await admin.config('SET', 'maxmemory', '1');
        const status = await waitFor(async () => {
          const reply = await http(`${journaling.url}/v1/status`);
          return reply.body.queue.ok === false ? reply : undefined;
        }, '/v1/status to report that Redis refuses writes');
        assert.match(status.body.queue.reason, /^the queue refuses writes: /);
        assert.equal(status.body.queue.journaling, true, 'it says accepted work goes to the outbox');
        assert.equal(status.body.queue.outbox.depth, 0, 'the readiness probe is not journaled');
        const ready = await http(`${journaling.url}/readyz`);
        assert.equal(ready.status, 200, 'ready: the outbox has room');
        assert.equal(ready.body.queue.journaling, true);
        assert.equal(ready.body.queue.outbox.depth, 0);
        assert.equal((await http(`${journaling.url}/multiply/2/3`)).status, 202, 'a request is journaled and accepted');
        assert.equal((await http(`${journaling.url}/v1/status`)).body.queue.outbox.depth, 1, 'only the request is in the outbox');
      } finally {
        await admin.config('SET', 'maxmemory', '0');
        admin.disconnect();
      }
      const back = await waitFor(async () => {
        const reply = await http(`${journaling.url}/v1/status`);
        return reply.body.queue.ok === true && reply.body.queue.outbox.depth === 0 ? reply : undefined;
      }, 'the outbox to forward and the probe to pass again');
      assert.equal(back.body.queue.journaling, false);
    } finally {
      await journaling.close();
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('when Redis is gone, then /metrics still answers and the failing queue read is logged', async () => {
    await redis.kill();
    try {
      const reply = await http(`${gateway.url}/metrics`);
      assert.equal(reply.status, 200);
      assert.match(reply.text, /^calcmesh_queue_up 0$/m);
      await waitFor(() => (logLines.some((line) => line.includes('queue stats failed in /metrics')) ? true : undefined), 'the log line');
    } finally {
      await redis.restart();
    }
  });
});

test('when a service metric collector throws, then the scrape is a 500 and the service keeps serving metrics', async () => {
  const metrics = createServiceMetrics('add');
  new Gauge({ name: 'calcmesh_test_broken', help: 'throws', registers: [metrics.registry], collect() { throw new Error('collector broke'); } });
  const server = serveMetrics(metrics, '127.0.0.1', 0, silentLogger());
  try {
    await waitFor(() => (server.listening ? true : undefined), 'the metrics port');
    const port = (server.address() as { port: number }).port;
    assert.equal((await http(`http://127.0.0.1:${port}/metrics`)).status, 500);
    assert.equal((await http(`http://127.0.0.1:${port}/metrics`)).status, 500, 'still answering');
  } finally {
    server.close();
  }
});
