/**
 * Without CALC_DATA_DIR, a gateway and a service started from different folders must share one
 * embedded queue (the user's state directory), say where it is, and the gateway must tell when
 * an operation's queue holds old tasks that no consumer claims. Real processes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_OPS } from '../../src/shared/operations.js';
import { http, waitFor } from '../helpers/gateway.js';
import { freePorts } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'calcmesh-datadir-'));
const started: Spawned[] = [];
after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL').catch(() => undefined)));
  rmSync(root, { recursive: true, force: true });
});

test('when the gateway and a service start from different folders without CALC_DATA_DIR, then they share the queue in the state directory and say where it is', async () => {
  const home = join(root, 'home');
  const [gatewayDir, serviceDir] = [join(root, 'gw-cwd'), join(root, 'svc-cwd')];
  for (const dir of [home, gatewayDir, serviceDir]) mkdirSync(dir, { recursive: true });
  const ports = await freePorts(SERVICE_OPS.length + 1);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_STATE_HOME: '',
    CALC_DATA_DIR: '',
    CALC_REDIS_URL: '',
    CALC_SERVICE_HOST: '127.0.0.1',
    CALC_METRICS_PORT: '-1',
    CALC_GATEWAY_PORT: String(ports.pop()),
    CALC_LEASE_MS: '1000',
    ...Object.fromEntries(SERVICE_OPS.map((op, i) => [`CALC_${op.toUpperCase()}_TARGETS`, `127.0.0.1:${ports[i]}`])),
  };
  const base = `http://127.0.0.1:${env.CALC_GATEWAY_PORT}`;
  const expectedFile = join(home, '.local', 'state', 'calcmesh', 'calcmesh.db');

  const gateway = spawnGroup(process.execPath, [CLI, 'gateway'], env, gatewayDir);
  started.push(gateway);
  await gateway.waitForOutput(/gateway listening/, 20_000);
  assert.ok(gateway.output().includes(expectedFile), `the gateway names its queue file; output:\n${gateway.output()}`);

  const reply = await http(`${base}/add/2/3`);
  assert.equal(reply.status, 202, reply.text);
  // Nobody claims add: once the task is older than a lease, /v1/status says the queue is stalled.
  const stalled = await waitFor(async () => {
    const add = (await http(`${base}/v1/status`)).body.services.add.queue;
    return add?.stalled ? add : undefined;
  }, 'the add queue to be reported stalled', 15_000);
  assert.equal(stalled.depth, 1);
  await gateway.waitForOutput(/no consumer/, 15_000);

  const service = spawnGroup(process.execPath, [CLI, 'service', 'add', '--port', env.CALC_ADD_TARGETS!.split(':')[1]!], env, serviceDir);
  started.push(service);
  await service.waitForOutput(/service listening/, 20_000);
  assert.ok(service.output().includes(expectedFile), 'the service names the same queue file');
  const ticket = (await http(`${base}/v1/results/${reply.body.id}?wait=15`)).body;
  assert.deepEqual([ticket.status, ticket.result], ['done', 5], 'the service drained the gateway\'s queue');
  await waitFor(async () => ((await http(`${base}/v1/status`)).body.services.add.queue?.stalled === false ? true : undefined), 'the stall to clear');
});
