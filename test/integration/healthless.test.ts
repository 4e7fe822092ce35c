/**
 * Replicas judged by their calls: one that serves no grpc.health.v1 (a server generated from the
 * original proto), one not seen yet when the caller starts, and calls cut short by a deadline
 * that belongs to a larger job (an expression's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, type ServiceDefinition, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { loadProto } from '../../src/shared/proto.js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createUpstreams, isUpstreamUnavailable } from '../../src/upstream/index.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const TRANSPORTS = ['h2', 'grpc-js'] as const;
const targetsFor = (target: string) => ({ add: [target], subtract: [target], multiply: [target], divide: [target], evaluate: [target] });
const soon = (ms = 1000, sharedDeadline = false) => ({ deadline: Date.now() + ms, requestId: 'healthless', sharedDeadline });

/** A Calculator-only server (no health, no reflection); `add` with num1 0 never answers. */
async function calculatorOnly(port: number) {
  const server = new Server();
  server.addService(loadProto().Calculator.service as ServiceDefinition, {
    Add: (call: ServerUnaryCall<{ num1: number; num2: number }, unknown>, done: sendUnaryData<unknown>) => {
      if (call.request.num1 !== 0) done(null, { result: call.request.num1 + call.request.num2 });
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return { stop: () => server.forceShutdown() };
}

for (const transport of TRANSPORTS) {
  test(`${transport}: when a replica serves no health service, then it is used at once; after its circuit opened, a real call closes it once it is back`, async () => {
    const port = await freePort();
    let server = await calculatorOnly(port);
    const upstreams = createUpstreams(targetsFor(`127.0.0.1:${port}`), { operations: ['add'], failureThreshold: 2, halfOpenAfterMs: 200, transport });
    try {
      assert.equal(await upstreams.arithmetic('add', 2, 3, soon()), 5);
      await waitFor(() => (upstreams.status().add[0]!.health === 'UNIMPLEMENTED' ? true : undefined), 'the watch to find no health service');
      assert.equal(upstreams.status().add[0]!.breaker, 'closed', 'no health service is not a failure');
      assert.equal(await upstreams.arithmetic('add', 4, 3, soon()), 7);

      server.stop();
      await waitFor(async () => {
        await upstreams.arithmetic('add', 1, 1, soon(300)).catch(() => undefined);
        return upstreams.status().add[0]!.breaker === 'open' ? true : undefined;
      }, 'the circuit to open on failed calls');
      server = await calculatorOnly(port);
      await waitFor(async () => ((await upstreams.arithmetic('add', 1, 1, soon()).catch(() => undefined)) === 2 ? true : undefined), 'a trial call to close the circuit');
      assert.equal(upstreams.status().add[0]!.breaker, 'closed');
    } finally {
      upstreams.close();
      server.stop();
    }
  });

  test(`${transport}: when the caller starts before its replica listens, then the first call after the replica is up is answered (tried, not assumed down)`, async () => {
    const port = await freePort();
    const upstreams = createUpstreams(targetsFor(`127.0.0.1:${port}`), { operations: ['add'], failureThreshold: 3, halfOpenAfterMs: 60_000, transport });
    const host = buildArithmeticServer('add', { logger: silentLogger() });
    try {
      await waitFor(() => (upstreams.status().add[0]!.health === 'UNREACHABLE' ? true : undefined), 'the watch to fail once');
      await host.listen('127.0.0.1', port);
      assert.equal(await upstreams.arithmetic('add', 6, 7, soon()), 13);
    } finally {
      upstreams.close();
      await host.shutdown({ forceAfterMs: 1000 });
    }
  });

  test(`${transport}: when calls are cut short by a shared (expression's) deadline, then they never open the replica's circuit; its own deadline does`, async () => {
    const port = await freePort();
    const server = await calculatorOnly(port);
    const upstreams = createUpstreams(targetsFor(`127.0.0.1:${port}`), { operations: ['add'], failureThreshold: 2, halfOpenAfterMs: 60_000, transport });
    try {
      for (let i = 0; i < 5; i++) {
        await assert.rejects(upstreams.arithmetic('add', 0, 1, soon(100, true)), (e) => isUpstreamUnavailable(e) && e.grpcCode === 4);
      }
      assert.equal(upstreams.status().add[0]!.breaker, 'closed');
      for (let i = 0; i < 2; i++) await assert.rejects(upstreams.arithmetic('add', 0, 1, soon(100)), isUpstreamUnavailable);
      assert.equal(upstreams.status().add[0]!.breaker, 'open');
    } finally {
      upstreams.close();
      server.stop();
    }
  });
}
