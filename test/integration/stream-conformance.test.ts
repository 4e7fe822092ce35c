/**
 * The conformance suite of the Stream path itself: the stream client against a peer that serves
 * the multiplexed Stream rpc badly (test/helpers/rogue-peer.ts, `streamMode`). It holds the
 * stream client to the table the unary transports follow (peer-conformance.test.ts): only a
 * failure of availability is UNAVAILABLE (queued, tried elsewhere); a malformed or error answer
 * is UPSTREAM_ERROR (502); nothing a peer sends becomes a result, a foreign error code or
 * unbounded memory. HTTP 404 means the rpc is not there: the client falls back to unary.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CalcError } from '../../src/shared/errors.js';
import { createStreamTargetClient, createUpstreams, type StreamTargetClient } from '../../src/upstream/index.js';
import { startRoguePeer, type RogueMode, type RoguePeer, type StreamRogueMode } from '../helpers/rogue-peer.js';
import { waitFor } from '../helpers/gateway.js';

type Expected = number | 'UPSTREAM_ERROR' | 'UNAVAILABLE';

/** What the stream client makes of each way of serving the Stream rpc (the unary rpcs answer correctly). */
const CASES: ReadonlyArray<readonly [StreamRogueMode | 'garbage-frames', Expected, string]> = [
  ['ok', 5, 'a correct Reply is the result'],
  ['unimplemented', 5, 'a peer without the Stream rpc is called unary'],
  ['http-404', 5, 'HTTP 404 (UNIMPLEMENTED) means no Stream rpc there: the call goes unary'],
  ['oversized', 'UPSTREAM_ERROR', 'a Reply declared over the limit is RESOURCE_EXHAUSTED'],
  ['unknown-ids', 'UPSTREAM_ERROR', 'Replies for call ids never sent break the protocol: INTERNAL'],
  ['garbage-message', 'UPSTREAM_ERROR', 'a message that is not protobuf is a malformed answer'],
  ['wrong-content-type', 'UPSTREAM_ERROR', 'a non-gRPC answer with HTTP 200 is UNKNOWN'],
  ['http-500', 'UPSTREAM_ERROR', 'HTTP 500 maps to UNKNOWN'],
  ['http-503', 'UNAVAILABLE', 'HTTP 503 maps to UNAVAILABLE'],
  ['rst-internal', 'UPSTREAM_ERROR', 'RST_STREAM INTERNAL_ERROR maps to INTERNAL'],
  ['rst-refused', 'UNAVAILABLE', 'RST_STREAM REFUSED_STREAM maps to UNAVAILABLE'],
  ['missing-trailers', 'UPSTREAM_ERROR', 'a stream ending without trailers is INTERNAL, not UNAVAILABLE'],
  ['ended-ok-unanswered', 'UNAVAILABLE', 'a call left unanswered when the stream ends OK was not answered'],
  ['ended-internal', 'UPSTREAM_ERROR', 'a stream ending INTERNAL is an error answer'],
  ['garbage-frames', 'UNAVAILABLE', 'a connection that does not speak HTTP/2 is unavailable'],
  ['no-result-field', 'UPSTREAM_ERROR', 'a Reply with neither a result nor a status is not a result of 0'],
  ['claims-auth', 'UPSTREAM_ERROR', "a Reply's calc-error-code UNAUTHENTICATED is not passed on"],
  ['slow-drip', 'UNAVAILABLE', 'a Reply dripping past the deadline is DEADLINE_EXCEEDED'],
  ['goaway', 5, 'GOAWAY mid-call: the old stream still answers the call'],
  ['goaway-drop', 'UNAVAILABLE', 'GOAWAY mid-call and the connection gone: the call was not answered'],
];

const outcome = async (client: StreamTargetClient, num1 = 2): Promise<number | string> => {
  try {
    return await client.arithmetic('add', num1, 3, { deadline: Date.now() + 800, requestId: 'stream-conformance' });
  } catch (error) {
    return error instanceof CalcError ? error.code : `not a CalcError: ${String(error)}`;
  }
};

const setModes = (peer: RoguePeer, mode: StreamRogueMode | 'garbage-frames') => {
  peer.mode = (mode === 'garbage-frames' ? 'garbage-frames' : 'ok') satisfies RogueMode;
  peer.streamMode = mode === 'garbage-frames' ? 'ok' : mode;
};

/** A stream client of the peer for one test, closed whatever the test's outcome. */
async function withClient(peer: RoguePeer, run: (client: ReturnType<typeof createStreamTargetClient>) => Promise<void>): Promise<void> {
  const client = createStreamTargetClient(peer.target);
  try {
    await run(client);
  } finally {
    client.close();
  }
}

describe('the Stream path against a peer that serves it badly', () => {
  let peer: RoguePeer;
  before(async () => { peer = await startRoguePeer(); });
  after(() => peer.close());

  for (const [mode, expected, what] of CASES) {
    test(`when the Stream peer plays ${mode}, then the call yields ${expected} (${what})`, async () => {
      setModes(peer, mode);
      await withClient(peer, async (client) => {
        assert.equal(await outcome(client), expected);
      });
    });
  }

  test('when the result is 0, then it is answered 0 (a Reply carries field 2 even for 0)', async () => {
    setModes(peer, 'ok');
    await withClient(peer, async (client) => {
      assert.equal(await outcome(client, -3), 0);
    });
  });

  test('when the peer streams a 1 GiB Reply, then the client stops reading after a few windows', async () => {
    setModes(peer, 'oversized');
    const before = peer.bytesSent();
    await withClient(peer, async (client) => {
      assert.equal(await outcome(client), 'UPSTREAM_ERROR');
      // Let the peer write whatever flow control still allows, then count it.
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(peer.bytesSent() - before < 16 * 1024 * 1024, `the peer got ${peer.bytesSent() - before} bytes in`);
    });
  });

  test('when the peer sends endless Replies for unknown ids, then the client stops reading them', async () => {
    setModes(peer, 'unknown-ids');
    const before = peer.bytesSent();
    await withClient(peer, async (client) => {
      assert.equal(await outcome(client), 'UPSTREAM_ERROR');
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(peer.bytesSent() - before < 16 * 1024 * 1024, `the peer got ${peer.bytesSent() - before} bytes in`);
    });
  });

  test('when a call timed out and its late Reply arrives, then the stream goes on answering', async () => {
    setModes(peer, 'ok');
    await withClient(peer, async (client) => {
      assert.equal(await outcome(client), 5);
      const opened = client.stats().streamsOpened;
      // A call withdrawn before its Reply (the peer answers it anyway, as a real one may in a race).
      const controller = new AbortController();
      const withdrawn = client.arithmetic('add', 1, 1, { deadline: Date.now() + 800, requestId: 'late', signal: controller.signal });
      controller.abort(new CalcError('UPSTREAM_ERROR', 'withdrawn'));
      await assert.rejects(withdrawn);
      assert.equal(await outcome(client, 10), 13);
      assert.equal(client.stats().streamsOpened, opened, 'the same stream answered');
    });
  });

  test('when the peer sends GOAWAY mid-call each time, then every next call is answered on a new stream', async () => {
    setModes(peer, 'goaway');
    await withClient(peer, async (client) => {
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await outcome(client, i));
      assert.deepEqual(results, [3, 4, 5, 6]);
    });
  });

  test('when a watched peer fails every Stream it is dialled, then it is dialled again no faster than every 50 ms', async () => {
    for (const mode of ['http-500', 'wrong-content-type', 'http-503', 'rst-refused'] as const) {
      setModes(peer, mode);
      await withClient(peer, async (client) => {
        const events: string[] = [];
        client.watchLink('calculator', (event) => events.push(event));
        const before = peer.streams();
        await waitFor(() => (peer.streams() - before >= 2 ? true : undefined), `${mode}: dialled again`);
        // A bound on a count, not on speed: a loaded machine dials less often, never more (500 ms / 50 ms = 10).
        await new Promise((r) => setTimeout(r, 500));
        const dials = peer.streams() - before;
        assert.ok(dials <= 14, `${mode}: ${dials} dials in ~500 ms`);
        assert.ok(!events.includes('up'), `${mode}: never reported up`);
      });
    }
  });

  test('when the Stream is answered with an error every time, then the circuit stays closed and each call is answered 502; when it is unavailable, the circuit opens', async () => {
    const upstreams = (failureThreshold: number) =>
      createUpstreams({ add: [peer.target], subtract: [], multiply: [], divide: [], evaluate: [] }, { operations: ['add'], transport: 'stream', failureThreshold, halfOpenAfterMs: 60_000 });
    const call = async (u: ReturnType<typeof upstreams>) => {
      try {
        return await u.arithmetic('add', 2, 3, { deadline: Date.now() + 800, requestId: 'circuit' });
      } catch (error) {
        return (error as CalcError).code;
      }
    };
    for (const mode of ['http-500', 'rst-internal', 'missing-trailers', 'no-result-field'] as const) {
      setModes(peer, mode);
      const u = upstreams(2);
      try {
        const outcomes = [];
        for (let i = 0; i < 5; i++) outcomes.push(await call(u));
        assert.deepEqual(outcomes, Array(5).fill('UPSTREAM_ERROR'), mode);
        assert.equal(u.status().add[0]?.breaker, 'closed', `${mode}: an error answer is not an availability failure`);
      } finally {
        u.close();
      }
    }
    for (const mode of ['http-503', 'rst-refused'] as const) {
      setModes(peer, mode);
      const u = upstreams(2);
      try {
        for (let i = 0; i < 3; i++) assert.equal(await call(u), 'UNAVAILABLE', mode);
        await waitFor(() => (u.status().add[0]?.breaker === 'open' ? true : undefined), `${mode}: the circuit opens`);
      } finally {
        u.close();
      }
    }
  });
});
