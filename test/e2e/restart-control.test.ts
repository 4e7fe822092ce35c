/**
 * `calcmesh restart <name>` stops one child of a running `calcmesh up` and starts it again,
 * touching no other process on the machine (the README's failover demo). Real processes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_OPS } from '../../src/shared/operations.js';
import { http, waitFor } from '../helpers/gateway.js';
import { freePorts } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'calcmesh-restart-'));
let up: Spawned | undefined;
after(async () => {
  await up?.stop('SIGKILL').catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

test('when calcmesh restart add --signal SIGKILL is run, then up kills its own add child and starts it again; an unknown name is refused', async () => {
  const ports = await freePorts(SERVICE_OPS.length + 1);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CALC_DATA_DIR: dataDir,
    CALC_REDIS_URL: '',
    CALC_METRICS_PORT: '-1',
    CALC_GATEWAY_PORT: String(ports.pop()),
    ...Object.fromEntries(SERVICE_OPS.map((op, i) => [`CALC_${op.toUpperCase()}_TARGETS`, `127.0.0.1:${ports[i]}`])),
  };
  up = spawnGroup(process.execPath, [CLI, 'up'], env);
  const base = `http://127.0.0.1:${env.CALC_GATEWAY_PORT}`;
  await waitFor(async () => ((await http(`${base}/readyz`).catch(() => undefined))?.body?.services?.add?.serving ? true : undefined), 'add serving', 60_000);
  const listening = () => up!.output().match(/add\s*\|.*add service listening/g)?.length ?? 0;
  assert.equal(listening(), 1);

  const restart = spawnSync(process.execPath, [CLI, 'restart', 'add', '--signal', 'SIGKILL'], { env, encoding: 'utf8', timeout: 15_000 });
  assert.equal(restart.status, 0, restart.stderr + restart.stdout);
  assert.match(restart.stdout, /add \(pid \d+\) sent SIGKILL/);
  await up.waitForOutput(/add exited \(SIGKILL\) as asked/, 10_000);
  await waitFor(() => (listening() >= 2 ? true : undefined), 'add to listen again', 20_000);
  await waitFor(async () => ((await http(`${base}/add/2/3`)).body?.result === 5 ? true : undefined), 'a direct answer from the new add', 10_000);

  const unknown = spawnSync(process.execPath, [CLI, 'restart', 'nope'], { env, encoding: 'utf8', timeout: 15_000 });
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stdout + unknown.stderr, /no component "nope"/);
  await up.stop('SIGINT', 20_000);
});

test('when calcmesh restart is run and no calcmesh up is running, then it says so in one line and exits non-zero, without a stack trace', () => {
  const empty = mkdtempSync(join(tmpdir(), 'calcmesh-restart-none-'));
  try {
    const restart = spawnSync(process.execPath, [CLI, 'restart', 'add', '--signal', 'SIGKILL'], { env: { ...process.env, CALC_DATA_DIR: empty, CALC_CONTROL_SOCKET: '' }, encoding: 'utf8', timeout: 15_000 });
    assert.notEqual(restart.status, 0);
    assert.match(restart.stderr, /no calcmesh up is running with control socket .*up\.sock/);
    assert.doesNotMatch(restart.stderr, /\n\s+at |node:events|Unhandled/, restart.stderr);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
