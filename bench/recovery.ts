/**
 * Recovery (issue 13): how long after a killed service's port accepts connections again the
 * gateway answers a request directly (200) instead of queueing it (202). Each repetition: a
 * direct answer, SIGKILL the add service, wait for its circuit to open, start it again on its
 * port, then (from the moment a TCP connect succeeds, probed every 2 ms) send requests one after
 * another until the first 200.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaseSettings } from './cases.js';
import { withSystem } from './cases.js';
import { spawnProc, tcpAccepts, type Proc } from './procs.js';
import type { Row } from './report.js';
import { CLI, type System } from './system.js';

export interface RecoveryResult {
  readonly row: Row;
  readonly medianMs: number;
  readonly maxMs: number;
}

const status = async (url: string): Promise<number> => (await fetch(url, { signal: AbortSignal.timeout(5000) }).then(async (r) => (await r.arrayBuffer(), r.status)));

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, pauseMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pauseMs);
  }
}

const addCircuit = async (system: System): Promise<string | undefined> => {
  const body = (await (await fetch(`${system.url}/v1/status`, { signal: AbortSignal.timeout(5000) })).json()) as any;
  return body?.services?.add?.replicas?.[0]?.breaker;
};

export async function recoveryCase(s: CaseSettings, repetitions: number): Promise<RecoveryResult> {
  return withSystem(s, 'sqlite', [], true, async (system) => {
    const url = `${system.url}/add/6/7`;
    const startAdd = (): Proc =>
      spawnProc('service-add', process.execPath, [CLI, 'service', 'add'], { ...system.env, CALC_SERVICE_PORT: String(system.port('add')) }, s.logDir);
    let proc = startAdd();
    const samples: number[] = [];
    let queuedTotal = 0;
    try {
      await until('the add service to answer through the gateway', async () => (await status(url)) === 200, 30_000, 20);
      for (let i = 0; i < repetitions; i++) {
        await proc.stop('SIGKILL', 5000);
        await until('the add circuit to open', async () => (await addCircuit(system)) === 'open', 10_000, 10);
        proc = startAdd();
        await until('the add port to accept', () => tcpAccepts(system.port('add')), 30_000, 2);
        const accepted = performance.now();
        for (;;) {
          const code = await status(url);
          if (code === 200) break;
          if (code !== 202) throw new Error(`GET /add/6/7 answered ${code} during the recovery`);
          queuedTotal++;
          if (performance.now() - accepted > 10_000) throw new Error('no direct answer within 10 s of the port accepting');
        }
        samples.push(performance.now() - accepted);
      }
    } finally {
      await proc.stop('SIGKILL', 5000);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const medianMs = sorted[Math.floor(sorted.length / 2)]!;
    const maxMs = sorted[sorted.length - 1]!;
    return {
      medianMs,
      maxMs,
      row: {
        label: '7. recovery: port accepts → first direct 200 (median)',
        rate: medianMs,
        unit: 'ms',
        p50Ms: medianMs,
        note: `max ${maxMs.toFixed(0)} ms over ${samples.length} kill/restart cycles of the add service (${sorted.map((v) => v.toFixed(0)).join(', ')} ms); ${queuedTotal} requests queued meanwhile, sent one after another`,
      },
    };
  });
}
