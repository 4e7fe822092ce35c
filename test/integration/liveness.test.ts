/**
 * Liveness from the stream (#13 item 3), against real `calcmesh service add` processes and the
 * real gateway: a killed service's circuit opens at once, a restarted one is used again as soon
 * as its port accepts (not when a half-open timer or a health re-watch comes round), and a
 * gateway started while the services serve answers its first request directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, startGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';
import type { ServiceOp } from '../../src/shared/operations.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
/** A client's steady pace while the service is away: the count of queued answers after the port accepts is bounded by it. */
const PACE_MS = 20;

describe('liveness from the stream, with real service processes', () => {
  let dataDir: string;
  const started: Spawned[] = [];
  const gateways: TestGateway[] = [];

  /** Starts `calcmesh service add` on `port`; resolves once it printed that it listens (its port accepts from then on). */
  async function startAdd(port: number): Promise<Spawned> {
    const proc = spawnGroup(process.execPath, [CLI, 'service', 'add'], {
      ...process.env,
      CALC_SERVICE_HOST: '127.0.0.1',
      CALC_SERVICE_PORT: String(port),
      CALC_METRICS_PORT: '-1',
      CALC_REDIS_URL: '',
      CALC_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
    });
    started.push(proc);
    await proc.waitForOutput(/add service listening/, 30_000);
    return proc;
  }

  const targetsFor = async (addTarget: string): Promise<Record<ServiceOp, string[]>> => {
    const dead = `127.0.0.1:${await freePort()}`;
    return { add: [addTarget], subtract: [dead], multiply: [dead], divide: [dead], evaluate: [dead] };
  };

  const addCircuit = async (gateway: TestGateway): Promise<string> =>
    (await http(`${gateway.url}/v1/status`)).body?.services?.add?.replicas?.[0]?.breaker ?? (await http(`${gateway.url}/v1/status`)).text;

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'calcmesh-liveness-'));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.close();
    for (const proc of started) await proc.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('when a gateway starts while the service serves, then its very first request is answered directly (200)', async () => {
    const port = await freePort();
    await startAdd(port);
    const gateway = await startGateway({ targets: await targetsFor(`127.0.0.1:${port}`) });
    gateways.push(gateway);
    const first = await http(`${gateway.url}/add/6/7`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.result, 13);
  });

  test('when a service is killed and restarted on its port, then its circuit opens at once and the first requests after its port accepts are answered directly, not queued', async (t) => {
    const port = await freePort();
    let proc = await startAdd(port);
    // A half-open timer far away: only the stream can close the circuit within this test.
    const gateway = await startGateway({ targets: await targetsFor(`127.0.0.1:${port}`), breaker: { failureThreshold: 3, halfOpenAfterMs: 60_000 } });
    gateways.push(gateway);
    assert.equal((await http(`${gateway.url}/add/1/2`)).status, 200);

    await proc.stop('SIGKILL');
    // No request in between: the broken stream alone opens the circuit.
    await waitFor(async () => ((await addCircuit(gateway)) === 'open' ? true : undefined), 'the circuit to open on the broken stream', 5_000);
    const queued = await http(`${gateway.url}/add/1/2`);
    assert.equal(queued.status, 202, 'a request while the service is away is queued');

    // A client keeps calling at a steady pace while the service comes back.
    let listening = false;
    let afterListen: number[] = [];
    let stop = false;
    const client = (async () => {
      while (!stop) {
        const reply = await http(`${gateway.url}/add/2/2`);
        if (listening) afterListen.push(reply.status);
        if (reply.status === 200 && listening) return;
        await new Promise((r) => setTimeout(r, PACE_MS));
      }
    })();
    try {
      proc = await startAdd(port);
      listening = true;
      afterListen = [];
      await waitFor(() => (afterListen.includes(200) ? true : undefined), 'a direct answer after the restart', 15_000);
    } finally {
      stop = true;
      await client;
    }
    const queuedAfter = afterListen.filter((s) => s === 202).length;
    t.diagnostic(`after the port accepted: ${afterListen.join(',')}`);
    // The stream is dialled every 50 ms while the service is away: at this pace at most a few
    // requests can land between the port accepting and the circuit closing. (Closing by the health
    // re-watch or the half-open timer took 1–2 s: 50–100 requests.)
    assert.ok(queuedAfter <= 5, `${queuedAfter} requests were queued after the port accepted: ${afterListen.join(',')}`);
    assert.ok(afterListen.every((s) => s === 200 || s === 202), afterListen.join(','));
    assert.equal(await addCircuit(gateway), 'closed');
  });
});
