/**
 * The cases of the table. Each starts the processes it needs, checks one request by hand (the
 * load generator only counts statuses), measures after a warm-up, checks the queue depth to
 * prove which path the requests took, and stops everything it started.
 */
import { fileURLToPath } from 'node:url';
import { SERVICE_OPS, type ServiceOp } from '../src/shared/operations.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { freePorts } from '../test/helpers/ports.js';
import { cpuSnapshot, otherCpuShare, serverCpuMs } from './cpu.js';
import { depthOf, measureDrain, openBenchQueue } from './drain.js';
import { runLoad, type LoadResult } from './load.js';
import { httpOk, onCleanup, spawnProc, tempDir, waitUntil } from './procs.js';
import type { Row } from './report.js';
import { startSystem, type QueueLocation, type System } from './system.js';

export interface CaseSettings {
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly backlog: number;
  readonly drainTimeoutS: number;
  readonly logDir: string;
}

export type Backend = 'redis' | 'sqlite';
export const EXPRESSION = '(6+7)*3 - 8/2';
const BARE_SERVER = fileURLToPath(new URL('./bare-server.mjs', import.meta.url));

type Measured = LoadResult & { readonly otherCpu: number; readonly cpuUsPerRequest: number };

/** The measured run alone, with the share of the machine that other work took meanwhile. */
async function measured(s: CaseSettings, url: string, jsonBody?: string): Promise<Measured> {
  const before = cpuSnapshot();
  const r = await runLoad({ url, durationS: s.durationS, connections: s.connections, jsonBody });
  const after = cpuSnapshot();
  return { ...r, otherCpu: otherCpuShare(before, after), cpuUsPerRequest: (serverCpuMs(before, after) * 1000) / Math.max(1, r.requests) };
}

async function measure(s: CaseSettings, url: string, jsonBody?: string): Promise<Measured> {
  if (s.warmupS > 0) await runLoad({ url, durationS: s.warmupS, connections: s.connections, jsonBody });
  return measured(s, url, jsonBody);
}

const loadRow = (label: string, r: Measured, note: string): Row =>
  ({ label, rate: r.rps, unit: 'req/s', p50Ms: r.p50Ms, p99Ms: r.p99Ms, non2xx: r.non2xx, errors: r.errors, otherCpu: r.otherCpu, cpuUs: r.cpuUsPerRequest, note });

async function expectStatus(url: string, status: number, init: RequestInit = {}): Promise<any> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const body = await response.json().catch(() => undefined);
  if (response.status !== status) throw new Error(`${init.method ?? 'GET'} ${url}: expected ${status}, got ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** A queue location for one case: a private redis-server (AOF everysec, as in production) or a fresh SQLite dir. */
async function queueLocation(backend: Backend, s: CaseSettings): Promise<{ location: QueueLocation; stop: () => Promise<void> }> {
  const dataDir = tempDir('calcmesh-bench-data-');
  if (backend === 'sqlite') return { location: { dataDir }, stop: async () => undefined };
  const redis = await startRedis({ appendonly: true, appendfsync: 'everysec' });
  const unregister = onCleanup(() => redis.stop());
  return {
    location: { redisUrl: redis.url, dataDir },
    stop: async () => {
      unregister();
      await redis.stop();
    },
  };
}

/** Runs `body` with a system and a queue handle of the benchmark's own; closes all of it whatever happens. */
export async function withSystem<T>(
  s: CaseSettings,
  backend: Backend,
  services: readonly ServiceOp[],
  gateway: boolean,
  body: (system: System, depth: (op: ServiceOp) => Promise<number>, queue: ReturnType<typeof openBenchQueue>) => Promise<T>,
  env?: NodeJS.ProcessEnv,
): Promise<T> {
  const { location, stop } = await queueLocation(backend, s);
  let system: System | undefined;
  let queue: ReturnType<typeof openBenchQueue> | undefined;
  try {
    system = await startSystem({ queue: location, logDir: s.logDir, services, gateway, env });
    queue = openBenchQueue(location);
    const q = queue;
    return await body(system, (op) => depthOf(q, op), q);
  } finally {
    await queue?.close().catch(() => undefined);
    await system?.close();
    await stop();
  }
}

export async function bareCase(s: CaseSettings): Promise<Row> {
  const [port] = await freePorts(1);
  const proc = spawnProc('bare-server', process.execPath, [BARE_SERVER, String(port)], process.env, s.logDir);
  try {
    const url = `http://127.0.0.1:${port}/add/6/7`;
    await waitUntil('the bare server', () => httpOk(url), proc);
    return loadRow('1. bare node:http, same JSON (ceiling)', await measure(s, url), 'JSON.stringify + randomUUID per request');
  } finally {
    await proc.stop();
  }
}

/** The direct path; `client` picks the gateway's gRPC client (the lean node:http2 one by default, grpc-js, or the multiplexed stream). */
export async function directCase(s: CaseSettings, client: 'h2' | 'grpc-js' | 'stream' = 'h2'): Promise<Row> {
  return withSystem(s, 'sqlite', ['add'], true, async (system, depth) => {
    const url = `${system.url}/add/6/7`;
    const body = await expectStatus(url, 200);
    if (body?.result !== 13) throw new Error(`GET /add/6/7 answered ${JSON.stringify(body)}`);
    const before = await depth('add');
    const r = await measure(s, url);
    const queued = (await depth('add')) - before;
    const label = { h2: '2. gateway direct GET /add/6/7, unary calls (node:http2, CALC_GRPC_CLIENT=h2)', 'grpc-js': '2b. the same, gateway calling through grpc-js', stream: '2c. the same over one multiplexed Stream rpc (the default)' }[client];
    return loadRow(label, r, queued === 0 ? 'all answered directly (nothing queued)' : `${queued} requests were queued instead of answered`);
  }, { CALC_GRPC_CLIENT: client });
}

export async function queuedCase(s: CaseSettings, backend: Backend): Promise<Row> {
  return withSystem(s, backend, [], true, async (system, depth) => {
    const url = `${system.url}/add/6/7`;
    const body = await expectStatus(url, 202);
    if (body?.status !== 'queued') throw new Error(`expected a queued ticket, got ${JSON.stringify(body)}`);
    if (s.warmupS > 0) await runLoad({ url, durationS: s.warmupS, connections: s.connections });
    const before = await depth('add');
    const r = await measured(s, url);
    const stored = (await depth('add')) - before;
    const label = `3. queued (add down → 202), ${backend === 'redis' ? 'Redis Streams' : 'SQLite'}`;
    const extra = backend === 'redis' ? ', Redis AOF everysec' : ', WAL synchronous=NORMAL';
    return loadRow(label, r, `${stored.toLocaleString('en-US')} tasks stored for ${r.requests.toLocaleString('en-US')} responses${extra}`);
  });
}

export async function drainCase(s: CaseSettings, backend: Backend): Promise<Row> {
  return withSystem(s, backend, [], false, async (system, _depth, queue) => {
    const d = await measureDrain({ system, queue, tasks: s.backlog, timeoutS: s.drainTimeoutS });
    const label = `4. drain ${d.tasks.toLocaleString('en-US')} add tasks, ${backend === 'redis' ? 'Redis Streams' : 'SQLite'}`;
    const outcome = d.timedOut ? `NOT EMPTY after ${s.drainTimeoutS} s (${d.drained} drained)` : `empty in ${(d.drainMs / 1000).toFixed(1)} s`;
    const note = `${outcome}; service start-up ${Math.round(d.startupMs)} ms not counted; backlog written at ${Math.round(d.fillPerS).toLocaleString('en-US')}/s; ${d.check}`;
    return { label, rate: d.tasksPerS, unit: 'tasks/s', otherCpu: d.otherCpu, cpuUs: d.cpuUsPerTask, note };
  });
}

export async function evaluateCase(s: CaseSettings, client: 'h2' | 'stream' = 'h2'): Promise<Row> {
  return withSystem(s, 'sqlite', SERVICE_OPS, true, async (system, depth) => {
    const url = `${system.url}/v1/evaluate`;
    const jsonBody = JSON.stringify({ expression: EXPRESSION });
    const body = await expectStatus(url, 200, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody });
    if (body?.result !== 35) throw new Error(`evaluate answered ${JSON.stringify(body)}`);
    const before = await depth('evaluate');
    const r = await measure(s, url, jsonBody);
    const queued = (await depth('evaluate')) - before;
    const note = `${EXPRESSION} = 35: 5 gRPC calls per request (gateway → evaluate → add, divide, multiply, subtract)${queued === 0 ? '' : `; ${queued} queued`}`;
    return loadRow(client === 'h2' ? '5. evaluator POST /v1/evaluate' : '5c. the same, every call over the Stream rpc', r, note);
  }, { CALC_GRPC_CLIENT: client });
}


export interface InterleavedResult {
  readonly rounds: ReadonlyArray<{ readonly bare: number; readonly direct: number; readonly evaluate: number }>;
  readonly directOverBare: number;
  readonly evaluateOverDirect: number;
  readonly rows: readonly Row[];
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * The issue-13 ratios measured side by side against the machine's drift: one bare server and one
 * whole system (gateway and the five services, Stream rpc) stay up, and the three loads take
 * turns, `rounds` times, each for `durationS`, their order rotated every round; the figures are
 * the medians of the per-round ratios. The single cases above are measured tens of seconds apart,
 * and the machine's own speed moves by ±25 % within minutes.
 */
export async function interleavedCase(s: CaseSettings, rounds: number): Promise<InterleavedResult> {
  const [port] = await freePorts(1);
  const bare = spawnProc('bare-server', process.execPath, [BARE_SERVER, String(port)], process.env, s.logDir);
  try {
    const bareUrl = `http://127.0.0.1:${port}/add/6/7`;
    await waitUntil('the bare server', () => httpOk(bareUrl), bare);
    return await withSystem(s, 'sqlite', SERVICE_OPS, true, async (system, depth) => {
      const directUrl = `${system.url}/add/6/7`;
      const evaluateUrl = `${system.url}/v1/evaluate`;
      const jsonBody = JSON.stringify({ expression: EXPRESSION });
      if ((await expectStatus(directUrl, 200))?.result !== 13) throw new Error('GET /add/6/7 did not answer 13');
      const evaluated = await expectStatus(evaluateUrl, 200, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody });
      if (evaluated?.result !== 35) throw new Error(`evaluate answered ${JSON.stringify(evaluated)}`);
      const loads = {
        bare: (durationS: number) => runLoad({ url: bareUrl, durationS, connections: s.connections }),
        direct: (durationS: number) => runLoad({ url: directUrl, durationS, connections: s.connections }),
        evaluate: (durationS: number) => runLoad({ url: evaluateUrl, durationS, connections: s.connections, jsonBody }),
      };
      const names = ['bare', 'direct', 'evaluate'] as const;
      for (const name of names) if (s.warmupS > 0) await loads[name](s.warmupS);
      const queuedBefore = (await depth('add')) + (await depth('evaluate'));
      const results: Array<Record<(typeof names)[number], LoadResult>> = [];
      for (let round = 0; round < rounds; round++) {
        const result = {} as Record<(typeof names)[number], LoadResult>;
        for (let i = 0; i < names.length; i++) {
          const name = names[(round + i) % names.length]!;
          result[name] = await loads[name](s.durationS);
        }
        results.push(result);
      }
      const queued = (await depth('add')) + (await depth('evaluate')) - queuedBefore;
      if (queued !== 0) throw new Error(`${queued} requests were queued instead of answered`);
      const perRound = results.map((r) => ({ bare: r.bare.rps, direct: r.direct.rps, evaluate: r.evaluate.rps }));
      const directOverBare = median(perRound.map((r) => r.direct / r.bare));
      const evaluateOverDirect = median(perRound.map((r) => r.evaluate / r.direct));
      const rate = (values: readonly number[]) => values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ');
      const row = (label: string, name: (typeof names)[number], note: string): Row => {
        const rpsMedian = median(results.map((r) => r[name].rps));
        return { label, rate: rpsMedian, unit: 'req/s', p50Ms: median(results.map((r) => r[name].p50Ms)), p99Ms: median(results.map((r) => r[name].p99Ms)), non2xx: results.reduce((n, r) => n + r[name].non2xx, 0), errors: results.reduce((n, r) => n + r[name].errors, 0), note: `${note}; per round: ${rate(results.map((r) => r[name].rps))} req/s` };
      };
      return {
        rounds: perRound,
        directOverBare,
        evaluateOverDirect,
        rows: [
          row('8a. interleaved: bare node:http (median of rounds)', 'bare', `${rounds} rounds of ${s.durationS} s, order rotated`),
          row('8b. interleaved: direct over the Stream rpc', 'direct', `direct ÷ bare per round: ${perRound.map((r) => (r.direct / r.bare).toFixed(2)).join(', ')}`),
          row('8c. interleaved: evaluator over the Stream rpc', 'evaluate', `evaluator ÷ direct per round: ${perRound.map((r) => (r.evaluate / r.direct).toFixed(2)).join(', ')}`),
        ],
      };
    });
  } finally {
    await bare.stop();
  }
}
