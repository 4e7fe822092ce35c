/** `calcmesh probe`, the containers' healthcheck, run as a process against real components and against nothing. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { roleOfCommandLine } from '../../src/cli/probe.js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import type { ServiceHost } from '../../src/services/grpc-host.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { startServices, type TestServices } from '../helpers/services.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
let services: TestServices;
let gateway: TestGateway;

before(async () => {
  services = await startServices();
  gateway = await startGateway({ targets: services.targets });
});
after(async () => {
  await gateway?.close();
  await services?.close();
});

/** Runs the CLI without blocking this process, which serves the components it probes. */
function probe(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'probe', ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, out: stdout.trim(), err: stderr.trim() });
    });
  });
}

test('when the gateway is ready, then probe gateway exits 0; when nothing listens there, it exits 1 saying why', async () => {
  const port = new URL(gateway.url).port;
  const ready = await probe({ CALC_GATEWAY_HOST: '0.0.0.0', CALC_GATEWAY_PORT: port }, 'gateway');
  assert.deepEqual(ready, { code: 0, out: `http://127.0.0.1:${port}/readyz answered 200`, err: '' });

  const nobody = await probe({ CALC_GATEWAY_PORT: String(await freePort()) }, 'gateway');
  assert.equal(nobody.code, 1);
  assert.match(nobody.err, /\/readyz: fetch failed/);
});

test('when a service serves, then probe service <op> exits 0; when nothing listens on its port, it exits 1', async () => {
  const ready = await probe({ CALC_SERVICE_PORT: String(services.ports.add) }, 'service', 'add');
  assert.deepEqual(ready, { code: 0, out: `add at 127.0.0.1:${services.ports.add}: SERVING`, err: '' });

  const nobody = await probe({ CALC_SERVICE_PORT: String(await freePort()), CALC_SERVICE_HOST: '127.0.0.1' }, 'service', 'add', '--timeout-ms', '1000');
  assert.equal(nobody.code, 1);
  assert.match(nobody.err, /add at 127\.0\.0\.1:\d+: UNREACHABLE/);
});

test('when a service reports NOT_SERVING (it is stopping), then probe service exits 1', async () => {
  const host: ServiceHost = buildArithmeticServer('multiply', { logger: silentLogger() });
  const port = await host.listen('127.0.0.1', 0);
  try {
    host.health.setStatus('', 'NOT_SERVING');
    const stopping = await probe({ CALC_SERVICE_PORT: String(port) }, 'service', 'multiply');
    assert.equal(stopping.code, 1);
    assert.match(stopping.err, /multiply at 127\.0\.0\.1:\d+: NOT_SERVING/);
  } finally {
    await host.shutdown({ forceAfterMs: 1000 });
  }
});

test('when one of a relay\'s targets serves, then probe relay exits 0; when none answers, it exits 1', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const usable = await probe({ CALC_DIVIDE_TARGETS: `${dead},${services.targets.divide[0]}` }, 'relay', 'divide', '--timeout-ms', '1000');
  assert.equal(usable.code, 0, usable.err);
  assert.match(usable.out, /SERVING/);

  const none = await probe({ CALC_DIVIDE_TARGETS: dead }, 'relay', 'divide', '--timeout-ms', '1000');
  assert.equal(none.code, 1);
  assert.match(none.err, /UNREACHABLE/);
});

test('when probe is given a bad role or operation, then it exits 1 with a message and no stack trace', async () => {
  for (const args of [['router'], ['service'], ['service', 'modulo'], ['gateway', '--timeout-ms', 'soon']]) {
    const bad = await probe({}, ...args);
    assert.equal(bad.code, 1, args.join(' '));
    assert.match(bad.err, /^calcmesh: /, args.join(' '));
    assert.doesNotMatch(bad.err, /\n\s+at /, args.join(' '));
  }
});

test('when the role comes from a container\'s main command line, then the calcmesh arguments after any init are used', () => {
  assert.deepEqual(roleOfCommandLine(['node', '/app/bin/calcmesh.js', 'gateway']), { role: 'gateway' });
  assert.deepEqual(roleOfCommandLine(['/sbin/docker-init', '--', 'calcmesh', 'service', 'evaluate']), { role: 'service', op: 'evaluate' });
  assert.deepEqual(roleOfCommandLine(['node', 'bin/calcmesh.js', 'relay', '--log-level', 'warn', 'add']), undefined, 'a flag value is not an operation');
  assert.deepEqual(roleOfCommandLine(['node', 'bin/calcmesh.js', 'relay', 'add']), { role: 'relay', op: 'add' });
  assert.equal(roleOfCommandLine(['redis-server', '/etc/redis.conf']), undefined);
  assert.equal(roleOfCommandLine(['node', 'bin/calcmesh.js', 'service', 'modulo']), undefined);
});
