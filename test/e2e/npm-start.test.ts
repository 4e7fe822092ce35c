/**
 * The new user's path: `npm start`, the four routes over HTTP, Ctrl-C, and no process left behind.
 * Every port comes from the OS, so this runs beside anything else on the machine.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, waitFor } from '../helpers/gateway.js';
import { freePorts } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'calcmesh-e2e-'));
let system: Spawned | undefined;

after(async () => {
  await system?.stop('SIGKILL').catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

test('when a new user runs npm start, then the four routes answer, and Ctrl-C leaves no process behind', async () => {
  const [gateway, add, subtract, multiply, divide, evaluate] = await freePorts(6);
  const env = {
    ...process.env,
    CALC_GATEWAY_PORT: String(gateway),
    CALC_ADD_TARGETS: `127.0.0.1:${add}`,
    CALC_SUBTRACT_TARGETS: `127.0.0.1:${subtract}`,
    CALC_MULTIPLY_TARGETS: `127.0.0.1:${multiply}`,
    CALC_DIVIDE_TARGETS: `127.0.0.1:${divide}`,
    CALC_EVALUATE_TARGETS: `127.0.0.1:${evaluate}`,
    CALC_DATA_DIR: dataDir,
    CALC_REDIS_URL: '',
  };
  // `npm test` has just built dist/. Without --ignore-scripts, prestart would build it again here,
  // rewriting dist/ under the processes that other test files start from it at the same time
  // (--test-concurrency=2; it once made a gateway fail on a missing Lua file). The flag skips
  // only the pre/post scripts: `start` itself runs as it does for a new user.
  system = spawnGroup('npm', ['start', '--silent', '--ignore-scripts'], env, ROOT);
  const base = `http://127.0.0.1:${gateway}`;
  const started = system;
  await waitFor(async () => {
    const ready = await http(`${base}/readyz`).catch(() => undefined);
    return ready?.body?.services?.divide?.serving ? true : undefined;
  }, 'the gateway to be ready with every service serving', 60_000).catch((error: Error) => {
    // What the processes said is what tells a slow start from a failed one.
    throw new Error(`${error.message}\n--- output of npm start (last 4 KiB) ---\n${started.output().slice(-4096)}`);
  });

  assert.deepEqual(
    await Promise.all(['add', 'subtract', 'multiply', 'divide'].map(async (op) => (await http(`${base}/${op}/6/3`)).body.result)),
    [9, 3, 18, 2],
  );
  const byZero = await http(`${base}/divide/1/0`);
  assert.equal(byZero.status, 422);
  assert.equal(byZero.body.error.code, 'DOMAIN_ERROR');
  for (const name of ['add', 'subtract', 'multiply', 'divide', 'evaluate', 'gateway']) {
    assert.match(system.output(), new RegExp(`^${name}\\s* \\| `, 'm'), `output of ${name} is prefixed`);
  }

  await system.stop('SIGINT', 20_000); // throws if any process of the group outlives the stop
});
