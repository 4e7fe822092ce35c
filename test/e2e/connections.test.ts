/**
 * File descriptors: a real gateway process under `ulimit -n 1024` with more idle connections
 * than it has descriptors still serves a new client; a slow header is answered 408; an idle
 * keep-alive socket is closed after seconds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
const IDLE_CONNECTIONS = 1100;

describe('a gateway under ulimit -n 1024', () => {
  let gateway: Spawned;
  let base: string;
  let port: number;
  let dir: string;
  const idle: Socket[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'calcmesh-fd-'));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    gateway = spawnGroup('bash', ['-c', `ulimit -n 1024; exec "${process.execPath}" "${CLI}" gateway`], {
      ...process.env, CALC_GATEWAY_PORT: String(port), CALC_DATA_DIR: dir, LOG_LEVEL: 'warn',
      CALC_HEADERS_TIMEOUT_MS: '1000', CALC_KEEPALIVE_TIMEOUT_MS: '1000',
    });
    await waitFor(() => http(`${base}/healthz`).then((r) => (r.status === 200 ? true : undefined), () => undefined), 'the gateway to answer', 30_000);
  });
  after(async () => {
    for (const socket of idle) socket.destroy();
    await gateway?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('when the headers do not arrive in time, then 408 REQUEST_TIMEOUT in JSON, not 400 malformed', async () => {
    const answer = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code, 'REQUEST_TIMEOUT');
  });

  test('when a keep-alive connection stays idle after its answer, then the gateway closes it after seconds', async () => {
    const answer = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 /);
  });

  // Last: it leaves the gateway with every descriptor it may use taken.
  test(`when ${IDLE_CONNECTIONS} idle connections are open, then a new client is still served`, async () => {
    await Promise.all(Array.from({ length: IDLE_CONNECTIONS }, () => new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve());
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      idle.push(socket);
    })));
    const reply = await http(`${base}/add/abc/1`);
    assert.deepEqual([reply.status, reply.body?.error?.code], [400, 'INVALID_ARGUMENT']);
    assert.equal((await http(`${base}/healthz`)).status, 200);
  });
});

/** Writes bytes and resolves with everything received once the server closes (10 s at most, else it rejects). */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`the server kept the connection open for 10 s; received ${JSON.stringify(data.slice(0, 200))}`)));
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('error', reject);
    socket.on('close', (hadError) => { if (!hadError) resolve(data); });
  });
}
