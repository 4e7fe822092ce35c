/**
 * Tasks that take longer than a lease, on real processes: two evaluator replicas drain queued
 * expressions whose every addition takes 400 ms (a slow add service in this test process, on a
 * real socket), so each expression runs ~1.6 s against a lease of 1 s. Each must be computed
 * once, and done, not reclaimed by the other replica or dead-lettered while it runs.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { createServiceHost, unary, type ServiceHost } from '../../src/services/grpc-host.js';
import { CALCULATOR_SERVICE, loadProto, type OperationRequest, type OperationResponse } from '../../src/shared/proto.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { http } from '../helpers/gateway.js';

const STEP_MS = 400;
let redis: TestRedis | undefined;
let cluster: Cluster | undefined;
let slowAdd: ServiceHost | undefined;
after(async () => {
  await cluster?.close();
  await slowAdd?.shutdown({ forceAfterMs: 1000 });
  await redis?.stop();
});

async function startSlowAdd(): Promise<{ port: number; calls: () => number }> {
  let calls = 0;
  const host = createServiceHost({
    serviceName: CALCULATOR_SERVICE,
    definition: loadProto().Calculator.service as ServiceDefinition,
    implementation: {
      Add: unary<OperationRequest, OperationResponse>('Add', async (req) => {
        calls += 1;
        await new Promise((r) => setTimeout(r, STEP_MS)); // the slowness under test
        return { result: req.num1 + req.num2 };
      }, silentLogger()),
    },
    logger: silentLogger(),
  });
  slowAdd = host;
  return { port: await host.listen('127.0.0.1', 0), calls: () => calls };
}

async function slowExpressions(backend: 'sqlite' | 'redis') {
  if (backend === 'redis') redis ??= await startRedis();
  await cluster?.close();
  await slowAdd?.shutdown({ forceAfterMs: 1000 });
  const add = await startSlowAdd();
  cluster = await startCluster({
    services: [],
    replicas: { evaluate: 2 },
    redisUrl: backend === 'redis' ? `${redis!.url}/2` : undefined,
    env: { CALC_LEASE_MS: '1000', CALC_DRAIN_CONCURRENCY: '4' },
  });
  const ids: string[] = [];
  for (let k = 0; k < 6; k++) {
    const reply = await http(`${cluster.gatewayUrl}/v1/evaluate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression: `${k}+1+1+1+1` }),
    });
    assert.equal(reply.status, 202, reply.text);
    ids.push(reply.body.id);
  }
  const slow = { CALC_ADD_TARGETS: `127.0.0.1:${add.port}` };
  await Promise.all([cluster.startService('evaluate', slow, 0), cluster.startService('evaluate', slow, 1)]);
  for (const [k, id] of ids.entries()) {
    const ticket: { status: string; result?: number; error?: { code: string } } = (await http(`${cluster.gatewayUrl}/v1/results/${id}?wait=30`)).body;
    assert.deepEqual([ticket.status, ticket.result, ticket.error?.code], ['done', k + 4, undefined], `ticket ${k}`);
  }
  assert.equal(add.calls(), ids.length * 4, 'each expression was computed once: four additions each');
}

describe('tasks longer than a lease', () => {
  test('when queued expressions take 1.6 s against a 1 s lease (embedded queue), then each is computed once and done', () => slowExpressions('sqlite'));
  test('when queued expressions take 1.6 s against a 1 s lease (Redis), then each is computed once and done', () => slowExpressions('redis'));
});
