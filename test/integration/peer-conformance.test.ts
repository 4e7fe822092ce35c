/**
 * The gRPC peer conformance suite: each transport ('h2', the lean client, and 'grpc-js') against
 * a misbehaving HTTP/2 server. For the same peer behaviour both must fail the same way — as an
 * answer that is an error (UPSTREAM_ERROR → 502), or as unavailability (UNAVAILABLE → queued) —
 * and never turn what a peer sent into a result, a foreign error code or unbounded memory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CalcError } from '../../src/shared/errors.js';
import { createH2TargetClient, createTargetClient, MAX_DETAILS_LENGTH, type TargetClient } from '../../src/upstream/index.js';
import { startRoguePeer, type RogueMode, type RoguePeer } from '../helpers/rogue-peer.js';

const TRANSPORTS = {
  h2: (target: string) => createH2TargetClient(target),
  'grpc-js': (target: string) => createTargetClient(target),
} as const;

type Expected = number | 'UPSTREAM_ERROR' | 'UNAVAILABLE';

/** What every conformant transport makes of each peer behaviour. */
const CASES: ReadonlyArray<readonly [RogueMode, Expected, string]> = [
  ['ok', 5, 'a correct answer is the result'],
  ['oversized', 'UPSTREAM_ERROR', 'a message declared over the limit ends the call as RESOURCE_EXHAUSTED'],
  ['max-message', 'UPSTREAM_ERROR', 'a message at the limit that is not a result is a malformed answer'],
  ['endless', 'UPSTREAM_ERROR', 'messages after the one answer end the call'],
  ['wrong-content-type', 'UPSTREAM_ERROR', 'a non-gRPC answer with HTTP 200 is an error, not a result'],
  ['http-500', 'UPSTREAM_ERROR', 'HTTP 500 maps to UNKNOWN'],
  ['http-404', 'UPSTREAM_ERROR', 'HTTP 404 maps to UNIMPLEMENTED'],
  ['http-503', 'UNAVAILABLE', 'HTTP 503 maps to UNAVAILABLE'],
  ['rst-internal', 'UPSTREAM_ERROR', 'RST_STREAM INTERNAL_ERROR maps to INTERNAL'],
  ['rst-refused', 'UNAVAILABLE', 'RST_STREAM REFUSED_STREAM maps to UNAVAILABLE'],
  ['missing-trailers', 'UPSTREAM_ERROR', 'an answer without trailers is INTERNAL, not UNAVAILABLE'],
  ['garbage-frames', 'UNAVAILABLE', 'a connection that does not speak HTTP/2 is unavailable'],
  ['slow-drip', 'UNAVAILABLE', 'an answer dripping past the deadline is DEADLINE_EXCEEDED'],
  ['no-result-field', 'UPSTREAM_ERROR', 'a message without field 1 is not a result of 0'],
  ['claims-auth', 'UPSTREAM_ERROR', "a peer's calc-error-code UNAUTHENTICATED is not passed on"],
];

const outcome = async (client: TargetClient): Promise<number | string> => {
  try {
    return await client.arithmetic('add', 2, 3, { deadline: Date.now() + 800, requestId: 'conformance' });
  } catch (error) {
    return error instanceof CalcError ? error.code : `not a CalcError: ${String(error)}`;
  }
};

for (const [transport, makeClient] of Object.entries(TRANSPORTS)) {
  describe(`transport ${transport}`, () => {
    let peer: RoguePeer;
    before(async () => { peer = await startRoguePeer(); });
    after(() => peer.close());

    for (const [mode, expected, what] of CASES) {
      test(`when the peer plays ${mode}, then the call yields ${expected} (${what})`, async () => {
        peer.mode = mode;
        const client = makeClient(peer.target);
        try {
          assert.equal(await outcome(client), expected);
        } finally {
          client.close();
        }
      });
    }

    test('when the peer sends GOAWAY after each answer, then every next call is answered on a new session', async () => {
      peer.mode = 'goaway';
      const client = makeClient(peer.target);
      try {
        const results = [];
        for (let i = 0; i < 4; i++) results.push(await client.arithmetic('add', i, 1, { deadline: Date.now() + 2000, requestId: 'goaway' }));
        assert.deepEqual(results, [1, 2, 3, 4]);
      } finally {
        client.close();
      }
    });

    test('when grpc-message is 1,200 characters (7 KB percent-encoded), then the error carries it decoded and cut to about 1 KiB', async () => {
      peer.mode = 'huge-message';
      const client = makeClient(peer.target);
      try {
        const error = await client.arithmetic('add', 1, 1, { deadline: Date.now() + 2000, requestId: 'huge' }).then(() => undefined, (e: CalcError) => e);
        assert.ok(error instanceof CalcError);
        assert.equal(error.code, 'UPSTREAM_ERROR');
        assert.match(error.message, /éééé/);
        assert.ok(error.message.length <= MAX_DETAILS_LENGTH + 200, `message is ${error.message.length} characters`);
      } finally {
        client.close();
      }
    });

    test('when the peer streams a 1 GiB message, then the client stops reading after a few windows', async () => {
      peer.mode = 'oversized';
      const before = peer.bytesSent();
      const client = makeClient(peer.target);
      try {
        assert.equal(await outcome(client), 'UPSTREAM_ERROR');
        // Let the peer write whatever flow control still allows, then count it.
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(peer.bytesSent() - before < 16 * 1024 * 1024, `the peer got ${peer.bytesSent() - before} bytes in`);
      } finally {
        client.close();
      }
    });
  });
}
