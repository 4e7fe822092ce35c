/** The CLI's push, history and dead-letter commands against a running system of real processes. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/gateway.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
let cluster: Cluster | undefined;
after(() => cluster?.close());

function calcmesh(...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args, '--gateway', cluster!.gatewayUrl], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: run.status, out: run.stdout.trim(), err: run.stderr.trim() };
}

test('when results --follow runs, then it prints a queued result as it completes; --list shows the history; dlq needs an operator key', async () => {
  cluster = await startCluster({ services: ['add', 'subtract', 'divide', 'evaluate'], env: { CALC_ADMIN_KEYS: 'ops-key:ops', CALC_EVENTS_POLL_MS: '50' } });

  const follower = spawn(process.execPath, [CLI, 'results', '--follow', '--json', '--gateway', cluster.gatewayUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
  let printed = '';
  follower.stdout.on('data', (chunk: Buffer) => { printed += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => follower.on('exit', resolve));
  try {
    const queued = calcmesh('call', 'multiply', '6', '7', '--json');
    assert.equal(queued.code, 2);
    const id = JSON.parse(queued.out).id as string;
    await cluster.startService('multiply');
    const line = await waitFor(() => printed.split('\n').find((l) => l.includes(id)), 'the pushed result', 20_000);
    assert.deepEqual([JSON.parse(line).status, JSON.parse(line).result], ['done', 42]);
    assert.match(calcmesh('results').out, /no completed results waiting/, 'pushed, so not pending any more');

    const list = calcmesh('results', '--list');
    assert.equal(list.code, 0);
    assert.match(list.out, new RegExp(`^${id}\\s+multiply\\s+6 7\\s+done\\s+42$`, 'm'));
    assert.deepEqual(JSON.parse(calcmesh('results', '--list', '--json', '--status', 'queued').out).results, []);
  } finally {
    follower.kill('SIGINT');
  }
  assert.equal(await exited, 0, 'an interrupted follower exits cleanly');

  assert.deepEqual(calcmesh('dlq', 'list', '--api-key', 'ops-key'), { code: 0, out: 'no dead letters', err: '' });
  const refused = calcmesh('dlq', 'list');
  assert.equal(refused.code, 1);
  assert.match(refused.out, /error 401 UNAUTHENTICATED/);
  const missing = calcmesh('dlq', 'purge', 'no-such-ticket', '--api-key', 'ops-key');
  assert.equal(missing.code, 1);
  assert.match(missing.out, /error 404 NOT_FOUND/);
});
