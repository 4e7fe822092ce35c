/**
 * The 500 path over HTTP: a bug below a route (here, the add upstream throwing a plain TypeError,
 * as a programming mistake would; no real service can make that happen) is answered with the
 * contract's JSON INTERNAL error. The message and the stack stay in the log, never in the answer.
 */
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { http, type TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

const SECRET = 'a detail for the log only: /srv/calcmesh/secret.db';
const logged: string[] = [];
const logger = pino({ level: 'error' }, new Writable({ write(chunk, _enc, done) { logged.push(String(chunk)); done(); } }));

let gateway: TestGateway;
withGateway({
  logger,
  wrapUpstreams: (real) => ({
    ...real,
    arithmetic: (op, a, b, options) => (op === 'add' ? Promise.reject(new TypeError(SECRET)) : real.arithmetic(op, a, b, options)),
  }),
}, (g) => (gateway = g));

test('when a bug throws below a route, then 500 INTERNAL in JSON without its message or stack, and the log has both', async () => {
  const reply = await http(`${gateway.url}/add/1/2`);
  assert.equal(reply.status, 500, reply.text);
  assert.equal(reply.body.error.code, 'INTERNAL');
  assert.match(reply.headers.get('content-type') ?? '', /application\/json/);
  assert.ok(!reply.text.includes('secret') && !reply.text.includes('TypeError') && !/\bat \S+:\d+/.test(reply.text), reply.text);
  assert.ok(logged.some((line) => line.includes(SECRET) && line.includes('"stack"')), 'the error and its stack are logged');
  assert.equal((await http(`${gateway.url}/multiply/2/3`)).body.result, 6, 'the gateway still answers');
});
