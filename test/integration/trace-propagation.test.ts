/**
 * The W3C trace context crosses every gRPC transport the gateway and the evaluator may use: the
 * lean node:http2 unary client, grpc-js, and the multiplexed Stream (per call, in Call field 8),
 * to a real service host on a real socket, which hands it to the handler (the context its own
 * calls would carry). Tracing is off in this process (no SDK): the context passes unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { silentLogger } from '../../src/shared/logger.js';
import { CALCULATOR_SERVICE, loadProto } from '../../src/shared/proto.js';
import { createServiceHost, notHere, unary, type ServiceHost } from '../../src/services/grpc-host.js';
import { CALCULATOR_STREAM_PATH, createStreamMount } from '../../src/services/stream-host.js';
import { createH2TargetClient, createStreamTargetClient, createTargetClient, type TargetClient } from '../../src/upstream/index.js';
import type { TraceContext } from '../../src/shared/tracing.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context on the wire', () => {
  const seen: { via: string; traceparent: string | undefined; tracestate: string | undefined }[] = [];
  let host: ServiceHost;
  let target: string;
  const clients: TargetClient[] = [];
  const record = (via: string, context: TraceContext) => seen.push({ via, traceparent: context.traceparent, tracestate: context.tracestate });

  before(async () => {
    const logger = silentLogger();
    const stream = createStreamMount({
      path: CALCULATOR_STREAM_PATH,
      handle: (call, context) => {
        record('stream', context);
        return call.num1 + call.num2;
      },
      logger,
    });
    host = createServiceHost({
      serviceName: CALCULATOR_SERVICE,
      definition: loadProto().Calculator.service as ServiceDefinition,
      implementation: {
        Add: unary<{ num1: number; num2: number }, { result: number }>('Add', (request, context) => {
          record('unary', context);
          return { result: request.num1 + request.num2 };
        }, logger),
        Subtract: notHere('Subtract', 'add'),
        Multiply: notHere('Multiply', 'add'),
        Divide: notHere('Divide', 'add'),
      },
      logger,
      stream,
    });
    target = `127.0.0.1:${await host.listen('127.0.0.1', 0)}`;
  });
  after(async () => {
    for (const client of clients) client.close();
    await host.shutdown();
  });

  const transports: [string, () => TargetClient, string][] = [
    ['the lean node:http2 client', () => createH2TargetClient(target), 'unary'],
    ['grpc-js', () => createTargetClient(target), 'unary'],
    ['the multiplexed Stream', () => createStreamTargetClient(target), 'stream'],
  ];

  for (const [name, make, via] of transports) {
    it(`when a call over ${name} carries a traceparent, then the service's handler continues that trace`, async () => {
      const client = make();
      clients.push(client);
      seen.length = 0;
      const options = { deadline: Date.now() + 5000, requestId: 'r1', traceparent: PARENT, tracestate: 'vendor=abc' };
      assert.equal(await client.arithmetic('add', 6, 7, options), 13);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.via, via);
      assert.equal(seen[0]!.traceparent, PARENT);
      assert.equal(seen[0]!.tracestate, 'vendor=abc', 'tracestate travels too (the Stream\'s Call field 10)');
    });

    it(`when a call over ${name} carries no or a malformed traceparent, then it is answered and the handler has no trace context`, async () => {
      const client = make();
      clients.push(client);
      seen.length = 0;
      assert.equal(await client.arithmetic('add', 1, 2, { deadline: Date.now() + 5000, requestId: 'r2' }), 3);
      assert.equal(await client.arithmetic('add', 2, 2, { deadline: Date.now() + 5000, requestId: 'r3', traceparent: '00-zz-not-a-trace' }), 4);
      assert.deepEqual(seen.map((s) => s.traceparent), [undefined, undefined]);
    });
  }
});
