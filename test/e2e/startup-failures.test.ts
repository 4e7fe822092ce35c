/**
 * Components that cannot start must say why and exit, not stay up half-working: an unusable
 * CALC_DATA_DIR, an unreachable Redis, a port already taken; and `calcmesh up` gives up on a
 * child that keeps failing at start-up the same way. Real processes of the built CLI.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, freePorts } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'calcmesh-startup-'));
const started: Spawned[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL').catch(() => undefined)));
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

const baseEnv = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...process.env, CALC_REDIS_URL: '', CALC_SERVICE_HOST: '127.0.0.1', CALC_METRICS_PORT: '-1', LOG_LEVEL: 'info', ...extra,
});

/** Runs the CLI and resolves with its exit code and output once it exits by itself (bounded). */
function runUntilExit(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  const child = spawnGroup(process.execPath, [CLI, ...args], env);
  started.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms; output:\n${child.output().slice(-3000)}`)), timeoutMs);
    child.child.once('exit', (code) => {
      clearTimeout(timer);
      // Let the pipes deliver the last lines.
      setImmediate(() => resolve({ code, output: child.output() }));
    });
  });
}

async function occupy(port: number): Promise<void> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
}

describe('start-up failures', () => {
  const notADir = join(dir, 'a-file');
  writeFileSync(notADir, 'not a directory');

  test('when CALC_DATA_DIR cannot be used, then the service exits non-zero naming the path and ENOTDIR, and never listens', async () => {
    const { code, output } = await runUntilExit(['service', 'add', '--port', String(await freePort())], baseEnv({ CALC_DATA_DIR: join(notADir, 'sub') }));
    assert.notEqual(code, 0);
    assert.match(output, /ENOTDIR/);
    assert.ok(output.includes(join(notADir, 'sub')), output);
    assert.doesNotMatch(output, /service listening/);
  });

  test('when CALC_DATA_DIR cannot be used, then the gateway exits non-zero naming the path and ENOTDIR', async () => {
    const { code, output } = await runUntilExit(['gateway', '--port', String(await freePort())], baseEnv({ CALC_DATA_DIR: join(notADir, 'sub') }));
    assert.notEqual(code, 0);
    assert.match(output, /ENOTDIR/);
    assert.doesNotMatch(output, /gateway listening/);
  });

  test('when Redis is unreachable at start, then the service exits non-zero naming the URL and the cause', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const { code, output } = await runUntilExit(['service', 'add', '--port', String(await freePort())], baseEnv({ CALC_REDIS_URL: url }));
    assert.notEqual(code, 0);
    assert.ok(output.includes(url), output);
    assert.match(output, /ECONNREFUSED/);
    assert.doesNotMatch(output, /service listening/);
  });

  test('when the service port is taken, then the service says "port … is in use (add service)" and exits non-zero', async () => {
    const port = await freePort();
    await occupy(port);
    const { code, output } = await runUntilExit(['service', 'add', '--port', String(port)], baseEnv({ CALC_DATA_DIR: join(dir, 'q1') }));
    assert.notEqual(code, 0);
    assert.match(output, new RegExp(`port ${port} is in use \\(add service\\)`));
  });

  test('when the gateway port is taken, then the gateway says "port … is in use (gateway)" and exits non-zero', async () => {
    const port = await freePort();
    await occupy(port);
    const { code, output } = await runUntilExit(['gateway', '--port', String(port)], baseEnv({ CALC_DATA_DIR: join(dir, 'q2') }));
    assert.notEqual(code, 0);
    assert.match(output, new RegExp(`port ${port} is in use \\(gateway\\)`));
  });

  test('when calcmesh up finds the gateway port taken, then it stops restarting after a few identical failures and exits non-zero saying why', async () => {
    const [gateway, add, subtract, multiply, divide, evaluate] = await freePorts(6);
    await occupy(gateway!);
    const { code, output } = await runUntilExit(['up'], baseEnv({
      CALC_DATA_DIR: join(dir, 'q3'),
      CALC_GATEWAY_PORT: String(gateway),
      CALC_ADD_TARGETS: `127.0.0.1:${add}`, CALC_SUBTRACT_TARGETS: `127.0.0.1:${subtract}`, CALC_MULTIPLY_TARGETS: `127.0.0.1:${multiply}`,
      CALC_DIVIDE_TARGETS: `127.0.0.1:${divide}`, CALC_EVALUATE_TARGETS: `127.0.0.1:${evaluate}`,
    }), 60_000);
    assert.notEqual(code, 0);
    assert.match(output, /gateway failed to start 3 times/);
    assert.match(output, new RegExp(`port ${gateway} is in use \\(gateway\\)`));
  });
});
