/** The evaluator as a user meets it: real processes, expressions over HTTP, failover of a whole expression. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http } from '../helpers/gateway.js';

let cluster: Cluster | undefined;
after(() => cluster?.close());

const evaluate = (expression: unknown, headers: Record<string, string> = {}) =>
  http(`${cluster!.gatewayUrl}/v1/evaluate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ expression }),
  });

test('when expressions are posted, then results and error codes come back; a missing service queues only what needs it', async (t) => {
  cluster = await startCluster({ env: { CALC_DEADLINE_MS: '500' } });

  await t.test('when an expression is valid, then 200 with its value', async () => {
    const reply = await evaluate('(6+7)*3 - 8/2');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.result, 35);
  });

  await t.test('when an expression divides by zero or is malformed, then 422 or 400 with the position', async () => {
    const byZero = await evaluate('1/(2-2)');
    assert.deepEqual([byZero.status, byZero.body.error.code], [422, 'DOMAIN_ERROR']);
    const malformed = await evaluate('2**3');
    assert.deepEqual([malformed.status, malformed.body.error.code], [400, 'INVALID_ARGUMENT']);
    assert.match(malformed.body.error.message, /position 3/);
  });

  await t.test('when an expression carries a request id, then every arithmetic service it used logs that id', async () => {
    const reply = await evaluate('(1+2)*(6-3)/3', { 'x-request-id': 'expr-trace-7' });
    assert.equal(reply.body.result, 3);
    for (const op of ['add', 'subtract', 'multiply', 'divide', 'evaluate'] as const) {
      await cluster!.service(op)!.waitForOutput(/"reqId":"expr-trace-7"/, 5000);
    }
  });

  await t.test('when multiply is down, then (2+3)*4 is queued while 2+3-1 is answered; when it is back, then the ticket is done with 20', async () => {
    await cluster!.signalService('multiply', 'SIGKILL');
    const needsMultiply = await evaluate('(2+3)*4');
    assert.equal(needsMultiply.status, 202, needsMultiply.text);
    const without = await evaluate('2+3-1');
    assert.deepEqual([without.status, without.body.result], [200, 4]);
    await cluster!.startService('multiply');
    const ticket = (await http(`${cluster!.gatewayUrl}/v1/results/${needsMultiply.body.id}?wait=25`)).body;
    assert.deepEqual([ticket.status, ticket.result, ticket.expression], ['done', 20, '(2+3)*4']);
  });

  await t.test('when a service the expression needs hangs, then the deadline holds end to end and the expression is queued, then done', async () => {
    await cluster!.signalService('add', 'SIGSTOP');
    const started = Date.now();
    const reply = await evaluate('1+2');
    const elapsed = Date.now() - started;
    assert.equal(reply.status, 202, reply.text);
    assert.ok(elapsed < 3000, `answered after ${elapsed} ms with a 500 ms deadline`);
    await cluster!.signalService('add', 'SIGCONT');
    const ticket = (await http(`${cluster!.gatewayUrl}/v1/results/${reply.body.id}?wait=25`)).body;
    assert.deepEqual([ticket.status, ticket.result], ['done', 3]);
  });
});
