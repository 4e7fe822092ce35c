/**
 * The multiplexed Stream rpc against real gRPC servers on real sockets (in this process): the
 * stream client's per-call semantics (status mapping, deadlines, cancellation, a slow call beside
 * fast ones, GOAWAY under load, the receive limit, the fallback to unary), and interop with a
 * grpc-js client calling the rpc.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { credentials, Server, ServerCredentials, type ClientDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import { buildEvaluatorServer } from '../../src/services/evaluator/server.js';
import type { ServiceHost } from '../../src/services/grpc-host.js';
import { silentLogger } from '../../src/shared/logger.js';
import { CalcError } from '../../src/shared/errors.js';
import { loadProto } from '../../src/shared/proto.js';
import { ARITHMETIC_OPS, type ArithmeticOp } from '../../src/shared/operations.js';
import { createH2TargetClient, createUpstreams, isUpstreamUnavailable, type TargetClient, type Upstreams } from '../../src/upstream/index.js';
import { createStreamTargetClient } from '../../src/upstream/stream-client.js';
import { waitFor } from '../helpers/gateway.js';

const soon = (ms = 5000) => ({ deadline: Date.now() + ms, requestId: 'test' });

/** What a call ended with, comparable across clients. */
async function outcome(promise: Promise<number>): Promise<unknown> {
  try {
    return { value: await promise };
  } catch (error) {
    const e = error as { code?: string; grpcCode?: number; origin?: string };
    return { code: e.code, grpcCode: e.grpcCode, origin: e.origin };
  }
}

/** A TCP server that accepts connections and never answers: a hung peer. */
async function blackHole(): Promise<{ target: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    target: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('the Stream rpc', () => {
  const hosts = new Map<ArithmeticOp, ServiceHost>();
  const targets = {} as Record<ArithmeticOp, string>;
  let evaluator: ServiceHost;
  let evaluatorTarget: string;
  let evaluatorUpstreams: Upstreams;
  let hole: Awaited<ReturnType<typeof blackHole>>;
  const clients: TargetClient[] = [];
  const track = <T extends TargetClient>(client: T): T => {
    clients.push(client);
    return client;
  };

  before(async () => {
    hole = await blackHole();
    for (const op of ARITHMETIC_OPS) {
      const host = buildArithmeticServer(op, { logger: silentLogger() });
      targets[op] = `127.0.0.1:${await host.listen('127.0.0.1', 0)}`;
      hosts.set(op, host);
    }
    // The evaluator's multiply points at the black hole: any product is a slow call.
    evaluatorUpstreams = createUpstreams(
      { ...targets, multiply: [hole.target], add: [targets.add], subtract: [targets.subtract], divide: [targets.divide], evaluate: ['127.0.0.1:9'] },
      { operations: ARITHMETIC_OPS, watchHealth: false, transport: 'stream' },
    );
    evaluator = buildEvaluatorServer({ upstreams: evaluatorUpstreams, logger: silentLogger(), deadlineMs: 30_000 });
    evaluatorTarget = `127.0.0.1:${await evaluator.listen('127.0.0.1', 0)}`;
  });

  after(async () => {
    for (const client of clients) client.close();
    await evaluator.shutdown({ forceAfterMs: 1000 });
    evaluatorUpstreams.close();
    for (const host of hosts.values()) await host.shutdown({ forceAfterMs: 1000 });
    await hole.close();
  });

  test('when the same calls go over the stream and over unary, then every result and every error maps to the same outcome', async () => {
    const stream = track(createStreamTargetClient(targets.divide));
    const unary = track(createH2TargetClient(targets.divide));
    const streamEval = track(createStreamTargetClient(evaluatorTarget));
    const unaryEval = track(createH2TargetClient(evaluatorTarget));
    const cases: Array<(c: TargetClient, e: TargetClient) => Promise<number>> = [
      (c) => c.arithmetic('divide', 7, 2, soon()),
      (c) => c.arithmetic('divide', 1, 0, soon()), // DOMAIN_ERROR
      (c) => c.arithmetic('add', 1, 2, soon()), // not served here: UNIMPLEMENTED → UPSTREAM_ERROR
      (_c, e) => e.evaluate('(6+7) - 8/2', soon()),
      (_c, e) => e.evaluate('1 +', soon()), // INVALID_ARGUMENT
      (_c, e) => e.evaluate('1 / 0', soon()), // DOMAIN_ERROR from the divide service
    ];
    for (const [i, make] of cases.entries()) {
      const viaStream = await outcome(make(stream, streamEval));
      const viaUnary = await outcome(make(unary, unaryEval));
      assert.deepEqual(viaStream, viaUnary, `case ${i}`);
    }
    assert.deepEqual(await outcome(stream.arithmetic('divide', 1, 0, soon())), { code: 'DOMAIN_ERROR', grpcCode: undefined, origin: undefined });
    assert.equal(stream.stats().streamsOpened, 1, 'every call went over one stream');
    assert.equal(stream.stats().unary, false);
  });

  test('when a call on the stream outlives its deadline, then it alone fails DEADLINE_EXCEEDED (queueable) while a call with time left answers', async () => {
    const client = track(createStreamTargetClient(evaluatorTarget));
    const slow = outcome(client.evaluate('2 * 3', soon(300)));
    const fast = await client.evaluate('1 + 2', soon(10_000));
    assert.equal(fast, 3);
    const failed = (await slow) as { code: string; grpcCode: number; origin: string };
    assert.equal(failed.code, 'UNAVAILABLE', 'a missed deadline is an availability failure: the gateway queues it');
    assert.ok(failed.grpcCode === 4 || failed.grpcCode === 14, `grpc code ${failed.grpcCode}`);
    assert.equal(client.stats().inFlight, 0);
  });

  test('when a slow call is in flight on the stream, then fast calls on the same stream are answered meanwhile', async () => {
    const client = track(createStreamTargetClient(evaluatorTarget));
    let slowSettled = false;
    const slow = client.evaluate('4 * 5', soon(4000)).finally(() => (slowSettled = true));
    slow.catch(() => undefined);
    const fast = await Promise.all(Array.from({ length: 50 }, (_, i) => client.evaluate(`${i} + 1`, soon(4000))));
    assert.deepEqual(fast, Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(slowSettled, false, 'the slow call is still waiting for its multiply');
    assert.equal(client.stats().streamsOpened, 1);
    await assert.rejects(slow, (error) => isUpstreamUnavailable(error));
  });

  test('when a caller aborts a call in flight, then it rejects at once with the reason, the service drops it, and the stream goes on', async () => {
    const client = track(createStreamTargetClient(evaluatorTarget));
    assert.equal(await client.evaluate('1 + 1', soon()), 2);
    const controller = new AbortController();
    const withdrawn = client.evaluate('6 * 7', { ...soon(60_000), signal: controller.signal });
    await waitFor(() => (evaluator.stream!.inFlight() === 1 ? true : undefined), 'the service to hold the call');
    const reason = new Error('the HTTP client went away');
    controller.abort(reason);
    await assert.rejects(withdrawn, (error) => error === reason);
    assert.equal(client.stats().inFlight, 0);
    await waitFor(() => (evaluator.stream!.inFlight() === 0 ? true : undefined), 'the service to drop the withdrawn call', 5000);
    assert.equal(await client.evaluate('2 + 2', soon()), 4);
    assert.equal(client.stats().streamsOpened, 1);
  });

  test('when a grpc-js client calls the Stream rpc, then each Call gets its Reply by id and a half-close ends the stream OK', async () => {
    const { Calculator, Evaluator } = loadProto();
    const calculator = new Calculator(targets.add, credentials.createInsecure());
    const evaluate = new Evaluator(evaluatorTarget, credentials.createInsecure());
    try {
      const talk = (stream: ClientDuplexStream<object, Record<string, unknown>>, calls: object[]) =>
        new Promise<{ replies: Record<string, unknown>[]; status: number }>((resolve, reject) => {
          const replies: Record<string, unknown>[] = [];
          stream.on('data', (reply) => replies.push(reply));
          stream.on('status', (status: { code: number }) => resolve({ replies, status: status.code }));
          stream.on('error', reject);
          for (const call of calls) stream.write(call);
          stream.end();
        });
      const arithmetic = await talk((calculator as any).Stream({ deadline: Date.now() + 5000 }), [
        { id: 1, method: 'Add', num1: 6, num2: 7, timeout_ms: 1000, request_id: 'grpc-js' },
        { id: 2, method: 'Multiply', num1: 6, num2: 7 },
        { id: 3, method: 'Add', num1: -1.5, num2: 0.25 },
      ]);
      assert.equal(arithmetic.status, 0);
      const byId = new Map(arithmetic.replies.map((r) => [r.id, r]));
      assert.equal(byId.get(1)?.result, 13);
      assert.equal(byId.get(1)?.code, 0);
      assert.equal(byId.get(2)?.code, 12, 'UNIMPLEMENTED: multiply is not served by the add service');
      assert.equal(byId.get(3)?.result, -1.25);
      const expression = await talk((evaluate as any).Stream({ deadline: Date.now() + 5000 }), [
        { id: 7, method: 'Evaluate', expression: '(6+7) - 8/2', timeout_ms: 3000 },
        { id: 8, method: 'Evaluate', expression: '1/0', timeout_ms: 3000 },
      ]);
      const answers = new Map(expression.replies.map((r) => [r.id, r]));
      assert.equal(answers.get(7)?.result, 9);
      assert.equal(answers.get(8)?.error_code, 'DOMAIN_ERROR');
      assert.equal(answers.get(8)?.code, 9, 'FAILED_PRECONDITION, as the unary rpc answers a domain error');
    } finally {
      calculator.close();
      evaluate.close();
    }
  });

  test('when the service shuts down (GOAWAY) under load and comes back on its port, then every call is answered or fails UNAVAILABLE, and the stream is re-dialled', async () => {
    const first = buildArithmeticServer('subtract', { logger: silentLogger() });
    const port = await first.listen('127.0.0.1', 0);
    const client = track(createStreamTargetClient(`127.0.0.1:${port}`));
    let running = true;
    const outcomes: unknown[] = [];
    const loop = async () => {
      while (running) outcomes.push(await outcome(client.arithmetic('subtract', 9, 2, soon(2000))));
    };
    const loops = Array.from({ length: 16 }, loop);
    await waitFor(() => (outcomes.length >= 500 ? true : undefined), '500 answers before the shutdown');
    await first.shutdown({ forceAfterMs: 2000 });
    const second = buildArithmeticServer('subtract', { logger: silentLogger() });
    await second.listen('127.0.0.1', port);
    try {
      const before = outcomes.length;
      await waitFor(() => (outcomes.slice(before).filter((o) => (o as { value?: number }).value === 7).length >= 200 ? true : undefined), 'answers from the new server');
      running = false;
      await Promise.all(loops);
      for (const o of outcomes) {
        const ok = (o as { value?: number }).value === 7 || ((o as { code?: string; grpcCode?: number }).code === 'UNAVAILABLE' && (o as { grpcCode?: number }).grpcCode === 14);
        assert.ok(ok, `unexpected outcome ${JSON.stringify(o)}`);
      }
      assert.ok(client.stats().streamsOpened >= 2, 'a new stream on the new server');
      assert.equal(client.stats().inFlight, 0);
    } finally {
      running = false;
      await second.shutdown({ forceAfterMs: 1000 });
    }
  });

  test('when a peer sends a reply larger than the receive limit, then the calls fail as an error answer (RESOURCE_EXHAUSTED, as unary) without the client buffering it', async () => {
    const server = http2.createServer();
    let sent = 0;
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      const header = Buffer.alloc(5);
      header.writeUInt32BE(64 * 1024 * 1024, 1); // announces 64 MiB
      stream.write(header);
      const chunk = Buffer.alloc(64 * 1024);
      const pushMore = () => {
        while (!stream.destroyed && sent < 8 * 1024 * 1024 && stream.write(chunk)) sent += chunk.length;
      };
      stream.on('drain', pushMore);
      pushMore();
      stream.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = track(createStreamTargetClient(`127.0.0.1:${(server.address() as { port: number }).port}`, { maxMessageBytes: 1024 * 1024 }));
    try {
      await assert.rejects(client.arithmetic('add', 1, 2, soon()), (error: CalcError) =>
        error instanceof CalcError && error.code === 'UPSTREAM_ERROR' && /RESOURCE_EXHAUSTED.*exceeds the limit/.test(error.message));
    } finally {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  // A foreign server that does not know the Stream rpc at all (generated from the original
  // proto), and one that declares it without implementing it (grpc-js answers UNIMPLEMENTED
  // without ending our half of the stream).
  for (const variant of ['unknown', 'declared but not implemented'] as const) {
    test(`when a service has no Stream rpc (${variant}: UNIMPLEMENTED), then the client calls it unary from then on, and the service's graceful shutdown still completes`, async () => {
      const definition = { ...(loadProto().Calculator.service as ServiceDefinition) } as Record<string, unknown>;
      if (variant === 'unknown') delete definition.Stream;
      const server = new Server();
      server.addService(definition as ServiceDefinition, {
        Add: (call: { request: { num1: number; num2: number } }, callback: (e: null, r: object) => void) => callback(null, { result: call.request.num1 + call.request.num2 }),
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
      const client = track(createStreamTargetClient(`127.0.0.1:${port}`));
      try {
        assert.deepEqual(await Promise.all([client.arithmetic('add', 6, 7, soon()), client.arithmetic('add', 1, 1, soon())]), [13, 2]);
        assert.equal(client.stats().unary, true);
        assert.equal(await client.arithmetic('add', 2, 3, soon()), 5);
        // The refused stream is not held open: tryShutdown waits for every active stream, and it
        // waited forever when our half of that stream stayed open.
        const shutdown = new Promise<string>((resolve) => server.tryShutdown(() => resolve('shut down')));
        const bound = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting for the client'), 5000).unref());
        assert.equal(await Promise.race([shutdown, bound]), 'shut down');
      } finally {
        client.close();
        server.forceShutdown();
      }
    });
  }
});
