/**
 * The lean node:http2 gRPC client against grpc-js servers: it must behave as a conformant gRPC
 * peer — results, status and message trailers, metadata, grpc-timeout deadlines, trailers-only
 * errors, reconnection after the server goes away, and TLS.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, type ServiceDefinition, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { startServices, type TestServices } from '../helpers/services.js';
import { makeCerts } from '../helpers/certs.js';
import { loadProto } from '../../src/shared/proto.js';
import { grpcCredentials } from '../../src/shared/tls.js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { CalcError } from '../../src/shared/errors.js';
import { createH2TargetClient, isUpstreamUnavailable, UpstreamUnavailableError } from '../../src/upstream/index.js';

let services: TestServices;
before(async () => { services = await startServices(); });
after(() => services.close());

const soon = (ms = 2000) => ({ deadline: Date.now() + ms, requestId: 'h2-test' });

test('when the four operations and an expression are called, then the answers are those of the grpc-js services', async () => {
  const results = [];
  for (const op of ['add', 'subtract', 'multiply', 'divide'] as const) {
    const client = createH2TargetClient(services.targets[op][0]!);
    results.push(await client.arithmetic(op, 6, 3, soon()));
    client.close();
  }
  assert.deepEqual(results, [9, 3, 18, 2]);
  const evaluator = createH2TargetClient(services.targets.evaluate[0]!);
  assert.equal(await evaluator.evaluate('(6+7)*3 - 8/2', soon()), 35);
  assert.equal(await evaluator.evaluate('2-2', soon()), 0, 'a zero result travels as an empty message');
  evaluator.close();
});

test('when a service answers an error, then its calcmesh code and message come through the trailers, and an rpc it does not serve is UPSTREAM_ERROR naming UNIMPLEMENTED', async () => {
  const divide = createH2TargetClient(services.targets.divide[0]!);
  await assert.rejects(divide.arithmetic('divide', 1, 0, soon()), (e: CalcError) => e.code === 'DOMAIN_ERROR' && e.message === 'division by zero');
  await assert.rejects(divide.arithmetic('add', 1, 1, soon()), (e: CalcError) => e.code === 'UPSTREAM_ERROR' && /UNIMPLEMENTED/.test(e.message));
  const evaluator = createH2TargetClient(services.targets.evaluate[0]!);
  await assert.rejects(evaluator.evaluate('2 ** 3', soon()), (e: CalcError) => e.code === 'INVALID_ARGUMENT' && /position 4/.test(e.message));
  divide.close();
  evaluator.close();
});

test('when a call is made, then the server sees its request id and a deadline from grpc-timeout; a silent server yields DEADLINE_EXCEEDED (the test timeout bounds the wait)', async () => {
  const seen: Array<{ requestId: unknown; deadlineInMs: number }> = [];
  const server = new Server();
  server.addService(loadProto().Calculator.service as ServiceDefinition, {
    Add: (call: ServerUnaryCall<{ num1: number }, unknown>, callback: sendUnaryData<unknown>) => {
      seen.push({ requestId: call.metadata.get('x-request-id')[0], deadlineInMs: Number(call.getDeadline()) - Date.now() });
      if (call.request.num1 !== 0) callback(null, { result: call.request.num1 });
      // num1 == 0: never answer
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = createH2TargetClient(`127.0.0.1:${port}`);
  try {
    assert.equal(await client.arithmetic('add', 5, 0, soon(1500)), 5);
    assert.equal(seen[0]!.requestId, 'h2-test');
    assert.ok(seen[0]!.deadlineInMs > 1000 && seen[0]!.deadlineInMs <= 1500, `deadline ${seen[0]!.deadlineInMs} ms`);
    const error = await client.arithmetic('add', 0, 0, soon(300)).catch((e: unknown) => e);
    assert.ok(error instanceof UpstreamUnavailableError && /DEADLINE_EXCEEDED/.test(error.message), String(error));
  } finally {
    client.close();
    server.forceShutdown();
  }
});

test('when nothing listens, then UNAVAILABLE; when the server goes away and comes back on the same port, then calls recover', async () => {
  const host = buildArithmeticServer('add', { logger: silentLogger() });
  const port = await host.listen('127.0.0.1', 0);
  const client = createH2TargetClient(`127.0.0.1:${port}`);
  try {
    assert.equal(await client.arithmetic('add', 1, 2, soon()), 3);
    await host.shutdown({ forceAfterMs: 1000 });
    const down = await client.arithmetic('add', 1, 2, soon()).catch((e: unknown) => e);
    assert.ok(isUpstreamUnavailable(down), String(down));
    const again = buildArithmeticServer('add', { logger: silentLogger() });
    await again.listen('127.0.0.1', port);
    try {
      let answer: number | undefined;
      for (let i = 0; i < 50 && answer === undefined; i++) {
        answer = await client.arithmetic('add', 2, 2, soon()).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 50)));
      }
      assert.equal(answer, 4);
    } finally {
      await again.shutdown({ forceAfterMs: 1000 });
    }
  } finally {
    client.close();
  }
});

test('when the service requires mutual TLS, then the client with the right certificates is served', async () => {
  const certs = makeCerts();
  const server = grpcCredentials({ certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.ca }).server;
  const host = buildArithmeticServer('multiply', { logger: silentLogger(), credentials: server });
  const port = await host.listen('127.0.0.1', 0);
  const good = createH2TargetClient(`127.0.0.1:${port}`, grpcCredentials({ certFile: certs.clientCert, keyFile: certs.clientKey, caFile: certs.ca }).clientTls);
  const plain = createH2TargetClient(`127.0.0.1:${port}`);
  try {
    assert.equal(await good.arithmetic('multiply', 6, 7, soon()), 42);
    assert.ok(isUpstreamUnavailable(await plain.arithmetic('multiply', 6, 7, soon()).catch((e: unknown) => e)));
  } finally {
    good.close();
    plain.close();
    await host.shutdown({ forceAfterMs: 1000 });
    certs.remove();
  }
});
