/** Replicas, circuits and health watching, against real gRPC servers on real sockets. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServices, type TestServices } from '../helpers/services.js';
import { waitFor } from '../helpers/gateway.js';
import { createUpstreams, isUpstreamUnavailable, type Upstreams } from '../../src/upstream/index.js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { CalcError } from '../../src/shared/errors.js';

let services: TestServices;
let upstreams: Upstreams;
const options = () => ({ deadline: Date.now() + 1000, requestId: 't' });

before(async () => {
  services = await startServices();
  upstreams = createUpstreams(services.targets, { failureThreshold: 2, halfOpenAfterMs: 100_000 });
  await waitFor(() => (upstreams.status().add[0]!.health === 'SERVING' ? true : undefined), 'the health watch');
});
after(async () => {
  upstreams.close();
  await services.close();
});

test('when a service answers domain errors, then its circuit stays closed', async () => {
  for (let i = 0; i < 10; i++) {
    await assert.rejects(upstreams.arithmetic('divide', 1, 0, options()), (e: CalcError) => e.code === 'DOMAIN_ERROR');
  }
  assert.equal(upstreams.status().divide[0]!.breaker, 'closed');
});

test('when a service stops, then its circuit opens and calls fail at once; when it returns, then the watch closes the circuit', async () => {
  await services.stop('subtract');
  await waitFor(() => (upstreams.status().subtract[0]!.breaker === 'open' ? true : undefined), 'the circuit to open');
  const error = await upstreams.arithmetic('subtract', 5, 3, options()).catch((e: unknown) => e);
  assert.ok(isUpstreamUnavailable(error));
  assert.match((error as Error).message, /circuit is open/);
  await services.start('subtract');
  await waitFor(() => (upstreams.status().subtract[0]!.breaker === 'closed' ? true : undefined), 'the circuit to close', 10_000);
  assert.equal(await upstreams.arithmetic('subtract', 5, 3, options()), 2);
});

test('when one of two replicas is down, then every call is answered by the other', async () => {
  const spare = buildArithmeticServer('multiply', { logger: silentLogger() });
  const port = await spare.listen('127.0.0.1', 0);
  const pair = createUpstreams({ ...services.targets, multiply: [`127.0.0.1:${port}`, services.targets.multiply[0]!] }, { watchHealth: false });
  try {
    await spare.shutdown({ forceAfterMs: 1000 });
    for (let i = 0; i < 20; i++) assert.equal(await pair.arithmetic('multiply', i, 2, options()), i * 2);
    assert.equal(pair.status().multiply[0]!.breaker, 'open', 'the dead replica was taken out of the rotation');
  } finally {
    pair.close();
  }
});

test('when one of two replicas hangs, then the calls it made time out count against it alone, and the healthy one keeps its circuit', async () => {
  const { Server, ServerCredentials } = await import('@grpc/grpc-js');
  const { loadProto } = await import('../../src/shared/proto.js');
  const silent = new Server();
  silent.addService(loadProto().Calculator.service as import('@grpc/grpc-js').ServiceDefinition, { Add: () => undefined });
  const port = await new Promise<number>((resolve, reject) =>
    silent.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const pair = createUpstreams({ ...services.targets, add: [`127.0.0.1:${port}`, services.targets.add[0]!] }, { watchHealth: false, failureThreshold: 3 });
  try {
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(await pair.arithmetic('add', i, 1, { deadline: Date.now() + 150, requestId: 't' }).then(String, (e: CalcError) => e.code));
    }
    assert.deepEqual(pair.status().add.map((r) => r.breaker), ['open', 'closed']);
    assert.ok(outcomes.slice(-3).every((o, k) => o === String(5 + k + 1)), `the last calls were answered by the healthy replica: ${outcomes}`);
  } finally {
    pair.close();
    silent.forceShutdown();
  }
});
