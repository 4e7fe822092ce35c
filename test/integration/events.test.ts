/**
 * GET /v1/events against real gateways, real gRPC services and each real queue backend: a client's
 * stream carries its own completions only, resumes with Last-Event-ID on another gateway of the
 * same deployment, and takes results the way /pending_results does (each delivered once).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compute } from '../../src/domain/compute.js';
import { startConsumer, type Consumer } from '../../src/queue/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import { BACKENDS, startBackend, type TestBackend } from '../helpers/backends.js';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { openSse, type SseStream } from '../helpers/sse.js';
import { startServices, type TestServices } from '../helpers/services.js';

const KEYS = { 'alice-key': 'alice', 'bob-key': 'bob', 'carol-key': 'carol' };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

for (const name of BACKENDS) {
  describe(`event stream on ${name}`, () => {
    let backend: TestBackend;
    let services: TestServices;
    let one: TestGateway;
    let two: TestGateway;
    let consumer: Consumer;
    const streams: SseStream[] = [];

    before(async () => {
      backend = await startBackend(name);
      services = await startServices();
      await services.stop('add');
      const config = { events: { heartbeatMs: 200, pollMs: 20, maxStreams: 10 } };
      one = await startGateway({ targets: services.targets, queue: backend.open(), apiKeys: KEYS, config });
      two = await startGateway({ targets: services.targets, queue: backend.open(), apiKeys: KEYS, config });
      consumer = startConsumer({
        queue: backend.open(), operation: 'add', consumer: 'add-test', leaseMs: 5000, logger: silentLogger(),
        handler: (task) => ({ ok: true, result: compute('add', task.num1!, task.num2!) }),
      });
    });
    after(async () => {
      for (const stream of streams) stream.close();
      await consumer?.stop();
      await one?.close();
      await two?.close();
      await services?.close();
      await backend?.close();
    });

    const queueAdd = async (gateway: TestGateway, key: string, a: number) => {
      const reply = await http(`${gateway.url}/add/${a}/1`, { headers: as(key) });
      assert.equal(reply.status, 202, reply.text);
      return reply.body.id as string;
    };
    const open = async (gateway: TestGateway, key: string, headers: Record<string, string> = {}) => {
      const stream = await openSse(`${gateway.url}/v1/events`, { ...as(key), ...headers });
      streams.push(stream);
      assert.equal(stream.status, 200);
      return stream;
    };
    const resultsOf = (stream: SseStream) => stream.events.filter((e) => e.event === 'result').map((e) => JSON.parse(e.data));
    const until = (stream: SseStream, count: number, what: string) =>
      waitFor(() => (resultsOf(stream).length >= count ? resultsOf(stream) : undefined), what);

    test('when results complete, then each client\'s stream pushes its own and none of another client\'s, and a disconnected client resumes with Last-Event-ID through the other gateway', async () => {
      const alice = await open(one, 'alice-key');
      const bob = await open(two, 'bob-key');
      const mine = [await queueAdd(one, 'alice-key', 1), await queueAdd(two, 'alice-key', 2), await queueAdd(one, 'alice-key', 3)];
      const his = await queueAdd(one, 'bob-key', 40);

      const received = await until(alice, 3, 'alice\'s three results');
      assert.deepEqual(new Set(received.map((t) => t.id)), new Set(mine));
      assert.ok(received.every((t) => t.status === 'done' && t.result === compute('add', t.num1, 1)));
      assert.ok(alice.events.every((e) => e.event === 'result' && e.id), 'every result event carries an id');
      const bobs = await until(bob, 1, 'bob\'s result');
      assert.deepEqual(bobs.map((t) => [t.id, t.result]), [[his, 41]]);
      assert.ok(!received.some((t) => t.id === his), 'alice never sees bob\'s result');

      // Alice goes away; two more complete meanwhile; she comes back on the other gateway after
      // her first event: the log replays the two she already had after it, then the new ones.
      alice.close();
      const later = [await queueAdd(one, 'alice-key', 5), await queueAdd(one, 'alice-key', 6)];
      for (const id of later) assert.equal((await http(`${one.url}/v1/results/${id}?wait=10`, { headers: as('alice-key') })).body.status, 'done');
      const resumed = await open(two, 'alice-key', { 'last-event-id': alice.events[0]!.id! });
      const replayed = await until(resumed, 4, 'the replay and the new results');
      assert.deepEqual(replayed.map((t) => t.id).slice(0, 2), alice.events.slice(1).map((e) => JSON.parse(e.data).id));
      assert.deepEqual(new Set(replayed.slice(2).map((t) => t.id)), new Set(later));

      // Delivered once: /pending_results has none of them, and bob's stream got nothing more.
      assert.deepEqual((await http(`${one.url}/pending_results`, { headers: as('alice-key') })).body.results, []);
      assert.equal(resultsOf(bob).length, 1);
    });

    test('when the stream is asked for with HEAD, then it answers at once and takes no result (a read)', async () => {
      // carol has no stream open: whatever /pending_results lacks afterwards, HEAD took.
      const id = await queueAdd(one, 'carol-key', 9);
      assert.equal((await http(`${one.url}/v1/results/${id}?wait=10`, { headers: as('carol-key') })).body.status, 'done');
      const head = await fetch(`${two.url}/v1/events`, { method: 'HEAD', headers: as('carol-key'), signal: AbortSignal.timeout(5000) });
      assert.equal(head.status, 200);
      assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
      const pending = (await http(`${one.url}/pending_results`, { headers: as('carol-key') })).body.results;
      assert.deepEqual(pending.map((t: { id: string }) => t.id), [id]);
    });

    test('when a stream is idle, then it sends heartbeat comments and no events', async () => {
      const idle = await open(one, 'carol-key');
      await waitFor(() => (idle.comments.filter((c) => c === 'heartbeat').length >= 2 ? true : undefined), 'two heartbeats');
      assert.deepEqual(idle.events, []);
      idle.close();
    });

    test('when Last-Event-ID is not an id the gateway sent, then the stream is refused with a JSON 400', async () => {
      const reply = await http(`${one.url}/v1/events`, { headers: { ...as('alice-key'), 'last-event-id': 'nonsense' } });
      assert.equal(reply.status, 400);
      assert.equal(reply.body.error.code, 'INVALID_ARGUMENT');
    });

    test('when no API key is given, then the stream is refused with 401', async () => {
      const reply = await http(`${one.url}/v1/events`);
      assert.equal(reply.status, 401);
    });
  });
}
