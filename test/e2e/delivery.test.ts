/**
 * Delivered once, and reads are reads (the contract's Delivery rule), as a user sees it with
 * the CLI: a result read with `calcmesh call --wait` (and by HEAD, OPTIONS and GET of the
 * ticket) is still delivered once by `calcmesh results`. Real processes, embedded queue.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
let cluster: Cluster | undefined;
after(() => cluster?.close());

const results = () => spawnSync(process.execPath, [CLI, 'results', '--gateway', cluster!.gatewayUrl], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });

test('when a queued result was read by call --wait, HEAD, OPTIONS and GET, then calcmesh results still delivers it, once', async () => {
  cluster = await startCluster({ services: ['add'] });
  const call = spawn(process.execPath, [CLI, 'call', 'subtract', '9', '4', '--wait', '30', '--json', '--gateway', cluster.gatewayUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  call.stdout.on('data', (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => call.once('exit', resolve));
  // The service starts only once the call is queued: started sooner, it would answer the call directly.
  await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/v1/status`)).body?.services?.subtract?.queue?.depth >= 1 ? true : undefined), 'the call to be queued', 20_000);
  await cluster.startService('subtract');
  assert.equal(await exited, 0, out);
  const ticket = JSON.parse(out) as { id: string; status: string; result: number };
  assert.deepEqual([ticket.status, ticket.result], ['done', 5]);

  for (const method of ['HEAD', 'OPTIONS']) await http(`${cluster.gatewayUrl}/pending_results`, { method });
  await http(`${cluster.gatewayUrl}/v1/results/${ticket.id}`, { method: 'HEAD' });
  assert.equal((await http(`${cluster.gatewayUrl}/v1/results/${ticket.id}?wait=1`)).body.result, 5);

  const first = results();
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`^${ticket.id}\\s+subtract\\s+9 4\\s+done\\s+5$`, 'm'), 'the read result is delivered');
  assert.match(results().stdout, /no completed results waiting/, 'and only once');
});
