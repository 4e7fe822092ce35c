/** The CLI as a user runs it against a running system: human output, --json, and the exit codes 0 / 1 / 2. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../helpers/cluster.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
let cluster: Cluster | undefined;
after(() => cluster?.close());

function calcmesh(...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args, '--gateway', cluster!.gatewayUrl], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: run.status, out: run.stdout.trim(), err: run.stderr.trim() };
}

test('when the CLI calls a running gateway, then it prints answers for people or JSON, with exit codes 0 done, 2 queued, 1 error', async () => {
  cluster = await startCluster({ services: ['add', 'subtract', 'divide', 'evaluate'] });

  assert.deepEqual(calcmesh('call', 'add', '6', '7'), { code: 0, out: '13', err: '' });
  const json = calcmesh('call', 'subtract', '6', '7', '--json');
  assert.equal(json.code, 0);
  assert.deepEqual([JSON.parse(json.out).operation, JSON.parse(json.out).result], ['subtract', -1]);
  assert.deepEqual(calcmesh('eval', '(6+7) - 8/2'), { code: 0, out: '9', err: '' });

  const byZero = calcmesh('call', 'divide', '1', '0');
  assert.equal(byZero.code, 1);
  assert.match(byZero.out, /error 422 DOMAIN_ERROR: division by zero/);
  assert.equal(calcmesh('call', 'add', 'abc', '1').code, 1);

  const queued = calcmesh('call', 'multiply', '6', '7');
  assert.equal(queued.code, 2);
  assert.match(queued.out, /^queued\s+ticket [0-9a-f-]{36}/);

  const status = calcmesh('status');
  assert.equal(status.code, 0);
  assert.match(status.out, /^service\s+replica\s+health\s+circuit\s+queued\s+oldest$/m);
  // Never seen serving, so not assumed down: its circuit opens only after CALC_BREAKER_FAILURES failed calls.
  assert.match(status.out, /^multiply\s+127\.0\.0\.1:\d+\s+UNREACHABLE\s+closed\s+1\s/m);

  await cluster.startService('multiply');
  const results = calcmesh('results', '--wait', '15');
  assert.equal(results.code, 0);
  assert.match(results.out, /^[0-9a-f-]{36}\s+multiply\s+6 7\s+done\s+42$/m);
  assert.match(calcmesh('results').out, /no completed results waiting/, 'each result is delivered once');

  const unreachable = spawnSync(process.execPath, [CLI, 'call', 'add', '1', '2', '--gateway', 'http://127.0.0.1:9'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stderr, /cannot reach the gateway/);
});
