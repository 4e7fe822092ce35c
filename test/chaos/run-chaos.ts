/**
 * One chaos run with exact accounting, against real processes:
 *
 *   Redis (AOF, appendfsync always) ─ cluster: add ×2, subtract, multiply, divide, evaluate, gateway
 *   clients (API keys) ── mixed load, every request with its own Idempotency-Key, retried on no answer;
 *                         some expressions are slow (the evaluator reaches add through a proxy that
 *                         delays each answer, so they run longer than a lease)
 *   read poller ───────── HEAD and OPTIONS of /pending_results and HEAD of tickets, all along
 *   chaos script ──────── kill -9 / SIGSTOP services, kill -9 the gateway, restart Redis
 *   then: restore everything, let the queues drain, read every ticket (twice, and as another
 *         client), replay a sample of keys, collect /pending_results (2 fetchers per client)
 *   and:  the ledger judges it all (see ledger.ts for the invariants).
 *
 * Needs the compiled CLI (`npm run build`) and redis-server on PATH. Every process and temporary
 * directory it creates is gone when it returns or throws.
 */
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { startMom, type MomKind } from './mom.js';
import type { Spawned } from '../helpers/processes.js';
import { ChaosMonkey, targetName, type ChaosEvent, type ChaosKind, type ServiceTarget } from './monkey.js';
import { readWithRetry, sendRequest, sleep } from './client.js';
import { Ledger, type LedgerCounts, type Violation } from './ledger.js';
import { ProcessLog } from './process-log.js';
import { QueueWatch } from './queue-watch.js';
import { createRng, type Rng } from './rng.js';
import { nextRequest } from './workload.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';
import { pollReads } from './read-poller.js';

export interface ChaosOptions {
  readonly durationMs: number;
  /** Clients, each with its own API key (default 3). */
  readonly clients?: number;
  /** Requests in flight per client (default 4). */
  readonly concurrency?: number;
  readonly seed: number | string;
  readonly log?: (line: string) => void;
  /** Requests per second started by all clients together (default 100); the run sends at most rate × duration. */
  readonly ratePerS?: number;
  /** Keep the processes' logs (their directory is in the report) instead of removing them. */
  readonly keepLogs?: boolean;
  /** The MOM and what a "Redis restart" does to it (mom.ts); one redis-server by default. */
  readonly mom?: MomKind;
  /** With mom 'outage': how long Redis stays dead each time (default 20 s). */
  readonly outageMs?: number;
}

export interface DrainFigures {
  /** From the end of the chaos window (everything restored) to every queue empty. */
  readonly finalMs: number | undefined;
  /** The longest time, over every repaired failure, from its repair to its queues being empty. */
  readonly maxAfterRestoreMs: number | undefined;
  readonly maxDepth: number;
}

export interface ChaosReport {
  readonly ok: boolean;
  readonly seed: number | string;
  readonly mom: MomKind;
  readonly durationMs: number;
  readonly clients: number;
  readonly concurrency: number;
  readonly ratePerS: number;
  readonly counts: LedgerCounts;
  readonly kills: Record<ChaosKind, number> & { byTarget: Record<string, number> };
  readonly events: readonly ChaosEvent[];
  readonly drain: DrainFigures;
  /** Phases, ms: start-up, load under chaos, drain, checks, teardown. */
  readonly phases: Record<string, number>;
  readonly wallMs: number;
  readonly violations: readonly (Violation & { evidence: string[] })[];
  /** HEAD / OPTIONS requests sent during the window (none may take a delivery). */
  readonly readOnlyPolls: number;
  /** The delay of every answer of add to the evaluator, and the lease it is measured against. */
  readonly slowAdd: { readonly delayMs: number; readonly leaseMs: number };
  /** Failures of the run itself or of a process that the chaos script did not cause. */
  readonly anomalies: readonly string[];
  readonly logsDir?: string;
}

const CLIENT_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const REPLICAS = { add: 2 } as const;
const TARGETS: readonly ServiceTarget[] = [
  { op: 'add', replica: 0 }, { op: 'add', replica: 1 }, { op: 'subtract', replica: 0 },
  { op: 'multiply', replica: 0 }, { op: 'divide', replica: 0 }, { op: 'evaluate', replica: 0 },
];
const ALL_OPS = ['add', 'subtract', 'multiply', 'divide', 'evaluate'];
/** Shares of requests sent twice at once (same key), and sent again right after their answer. */
const TWIN_SHARE = 0.03;
const REPLAY_SHARE = 0.05;
/** Share of all requests replayed once more after the queues drained. */
const FINAL_REPLAY_SHARE = 0.2;
const LEASE_MS = 2000;
/** Each answer of add to the evaluator: a slow expression (16–24 additions) then takes 2.4–3.6 s. */
const SLOW_ADD_MS = 150;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const wallStart = Date.now();
  const log = options.log ?? (() => {});
  const clientCount = Math.min(options.clients ?? 3, CLIENT_NAMES.length);
  const concurrency = options.concurrency ?? 4;
  const ratePerS = options.ratePerS ?? 100;
  const maxRequests = Math.ceil((options.durationMs / 1000) * ratePerS);
  const clients = CLIENT_NAMES.slice(0, clientCount).map((name, i) => ({ name, apiKey: `k${i + 1}-${name}` }));
  const rng = createRng(options.seed);
  const runTag = `r${createRng(`${options.seed}`).int(0, 0xffffff).toString(16)}-${wallStart.toString(36)}`;
  requireBuild();

  const plog = new ProcessLog();
  const anomalies: string[] = [];
  const phases: Record<string, number> = {};
  let phaseStart = Date.now();
  const phase = (name: string) => {
    phases[name] = Date.now() - phaseStart;
    phaseStart = Date.now();
    log(`phase ${name}: ${phases[name]} ms`);
  };
  let redis: TestRedis | undefined;
  // Last resort if this process exits before its finally (Ctrl-C, a test timeout): the services
  // run in process groups of their own, and the directories would stay behind.
  const emergency = () => {
    for (const pid of plog.livePids()) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (!options.keepLogs) plog.remove();
    if (redis) rmSync(redis.dir, { recursive: true, force: true });
  };
  process.once('exit', emergency);

  let cluster: Cluster | undefined;
  let gateway: Spawned | undefined;
  const proxies: DelayProxy[] = [];
  let evaluatorEnv: NodeJS.ProcessEnv | undefined;
  let verdict: Omit<ChaosReport, 'wallMs' | 'violations' | 'anomalies' | 'logsDir' | 'ok' | 'phases'> & { violations: Violation[] } | undefined;
  let readOnlyPolls = 0;
  try {
    const mom = await startMom(options.mom ?? 'redis', { outageMs: options.outageMs, log });
    redis = mom.redis;
    cluster = await startCluster({
      replicas: REPLICAS,
      services: ['add', 'subtract', 'multiply', 'divide'],
      serviceEnv: (op) => (op === 'evaluate' ? evaluatorEnv : undefined),
      env: {
        ...mom.env,
        CALC_API_KEYS: clients.map((c) => `${c.apiKey}:${c.name}`).join(','),
        CALC_LEASE_MS: String(LEASE_MS),
        CALC_DEADLINE_MS: '500',
        CALC_RATE_LIMIT: '',
        LOG_LEVEL: 'info',
      },
    });
    // The evaluator reaches each add replica through a proxy that delays its answers.
    for (const target of cluster.env.CALC_ADD_TARGETS!.split(',')) {
      proxies.push(await startDelayProxy(Number(target.slice(target.lastIndexOf(':') + 1)), SLOW_ADD_MS));
    }
    evaluatorEnv = { CALC_ADD_TARGETS: proxies.map((p) => `127.0.0.1:${p.port}`).join(',') };
    await cluster.startService('evaluate');
    for (const t of TARGETS) plog.attach(targetName(t), cluster.service(t.op, t.replica)!);
    // The helper keeps its first gateway's handle to itself: start it again to follow its output.
    await cluster.killGateway('SIGTERM');
    gateway = await cluster.startGateway();
    plog.attach('gateway', gateway);
    phase('startup');

    const ledger = new Ledger();
    const watch = new QueueWatch(`${cluster.gatewayUrl}/v1/status`, clients[0]!.apiKey);
    watch.start();
    const c = cluster;
    const monkey = new ChaosMonkey({
      cluster: c,
      redis,
      targets: TARGETS,
      rng: rng.fork('chaos'),
      log,
      expectExit: (spawned) => plog.expectExit(spawned),
      started: (name, spawned) => {
        if (name === 'gateway') gateway = spawned;
        plog.attach(name, spawned);
      },
      gateway: () => gateway,
    });

    // Under chaos: the load and the failures, side by side, for the same window.
    const chaosUntil = Date.now() + options.durationMs;
    const load = runLoad({ url: c.gatewayUrl, clients, concurrency, maxRequests, ratePerS, until: chaosUntil, rng: rng.fork('load'), runTag, ledger });
    const reads = pollReads({ url: c.gatewayUrl, clients, ledger, until: chaosUntil });
    await monkey.run(chaosUntil).catch((error) => anomalies.push(`chaos script stopped: ${String(error)}`));
    const repaired = await monkey.restoreAll();
    for (const r of repaired) anomalies.push(`after the chaos window, had to repair: ${r} (it went away on its own)`);
    const restoredAt = Date.now();
    await load;
    readOnlyPolls = await reads;
    phase('chaos');

    // Drained: every queue empty (nothing stored, nothing in flight) after the last repair.
    const finalMs = await watch.untilDrained(restoredAt, ALL_OPS, 90_000);
    if (finalMs === undefined) anomalies.push('the queues did not drain within 90 s of the restore');
    phase('drain');

    // A client that lost its answers asks again: now every earlier ticket is done, so a replay
    // must come back 200 with the same id and result. Should one be stored anew, let it drain too.
    const keyOf = new Map(clients.map((cl) => [cl.name, cl.apiKey]));
    const replayRng = rng.fork('final-replays');
    const replayed = ledger.specs().filter(() => replayRng.chance(FINAL_REPLAY_SHARE));
    const replaysAt = Date.now();
    await mapLimit(replayed, 8, (spec) => sendRequest(c.gatewayUrl, spec, keyOf.get(spec.client)!, ledger, 'replay'));
    if ((await watch.untilDrained(replaysAt, ALL_OPS, 60_000)) === undefined) anomalies.push('the queues did not drain within 60 s of the final replays');

    const tickets = ledger.tickets();
    const readAll = () =>
      mapLimit(tickets, 16, async (t) => {
        ledger.read(t.client, t.id, await readWithRetry(`${c.gatewayUrl}/v1/results/${t.id}?wait=10`, keyOf.get(t.client)!));
      });
    await readAll();
    await Promise.all(clients.map((cl) => collectPending(c.gatewayUrl, cl, new Set(tickets.filter((t) => t.client === cl.name && t.queued).map((t) => t.id)), ledger, anomalies)));
    await readAll();
    await mapLimit(tickets, 16, async (t) => {
      const other = clients[(clients.findIndex((cl) => cl.name === t.client) + 1) % clients.length]!;
      if (other.name !== t.client) ledger.foreignRead(other.name, t.id, await readWithRetry(`${c.gatewayUrl}/v1/results/${t.id}`, other.apiKey));
    });
    await watch.stop();
    phase('checks');

    const judged = ledger.verify();
    for (const e of monkey.events) {
      if (e.ops.length === 0 || e.restoredAt === undefined) continue;
      const drained = watch.drainedAfter(e.restoredAt, e.ops) ?? (finalMs === undefined ? undefined : restoredAt + finalMs - e.restoredAt);
      if (drained !== undefined) e.drainMs = drained;
      if (e.ops.length > 1) e.drainedLast = watch.slowest(e.restoredAt, e.ops);
    }
    const measured = monkey.events.map((e) => e.drainMs).filter((d): d is number => d !== undefined);
    for (const e of monkey.events) if (e.error) anomalies.push(`chaos ${e.kind} ${e.target} failed: ${e.error}`);
    verdict = {
      seed: options.seed,
      mom: options.mom ?? 'redis',
      durationMs: options.durationMs,
      clients: clientCount,
      concurrency,
      ratePerS,
      counts: judged.counts,
      kills: monkey.counts(),
      events: monkey.events,
      drain: { finalMs, maxAfterRestoreMs: measured.length > 0 ? Math.max(...measured, finalMs ?? 0) : finalMs, maxDepth: watch.maxDepth },
      readOnlyPolls,
      slowAdd: { delayMs: SLOW_ADD_MS, leaseMs: LEASE_MS },
      violations: judged.violations,
    };
  } finally {
    plog.endOfRun();
    const teardown = Date.now();
    await cluster?.close().catch((error) => anomalies.push(`cluster close: ${String(error)}`));
    await redis?.stop().catch((error) => anomalies.push(`redis stop: ${String(error)}`));
    await Promise.all(proxies.map((p) => p.close()));
    await plog.close();
    process.removeListener('exit', emergency);
    phases.teardown = Date.now() - teardown;
  }
  for (const exit of plog.unexpectedExits) {
    anomalies.push(`${exit.name} exited on its own (${exit.signal ?? exit.code}) at ${new Date(exit.at).toISOString()}; last output:\n${exit.tail}`);
  }
  // Evidence for the first violations only: each grep reads every log.
  const violations = verdict.violations.map((v, i) => ({ ...v, evidence: i < 25 ? plog.grep([v.key ? `${v.key}.` : '', v.id ?? ''], 10) : [] }));
  if (!options.keepLogs) plog.remove();
  return {
    ...verdict,
    ok: violations.length === 0 && anomalies.length === 0,
    phases,
    wallMs: Date.now() - wallStart,
    violations,
    anomalies,
    ...(options.keepLogs ? { logsDir: plog.dir } : {}),
  };
}

interface LoadOptions {
  readonly url: string;
  readonly clients: readonly { name: string; apiKey: string }[];
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly ratePerS: number;
  readonly until: number;
  readonly rng: Rng;
  readonly runTag: string;
  readonly ledger: Ledger;
}

/**
 * `concurrency` workers per client, each sending one request at a time, together paced to
 * `ratePerS` new requests per second, until the window closes or the budget is spent.
 */
async function runLoad(o: LoadOptions): Promise<void> {
  let seq = 0;
  let nextSlot = Date.now();
  const pace = async () => {
    nextSlot = Math.max(nextSlot + 1000 / o.ratePerS, Date.now() - 1000);
    await sleep(nextSlot - Date.now());
  };
  const worker = async (client: { name: string; apiKey: string }, w: number) => {
    const rng = o.rng.fork(`${client.name}/${w}`);
    for (;;) {
      await pace();
      if (Date.now() >= o.until || seq >= o.maxRequests) return;
      const n = seq++;
      const spec = nextRequest(rng, client.name, n, `${o.runTag}-${client.name}-${n}`);
      o.ledger.issue(spec);
      if (rng.chance(TWIN_SHARE)) {
        await Promise.all([sendRequest(o.url, spec, client.apiKey, o.ledger, 'first'), sendRequest(o.url, spec, client.apiKey, o.ledger, 'twin')]);
      } else {
        await sendRequest(o.url, spec, client.apiKey, o.ledger, 'first');
      }
      if (rng.chance(REPLAY_SHARE)) await sendRequest(o.url, spec, client.apiKey, o.ledger, 'replay');
    }
  };
  await Promise.all(o.clients.flatMap((client) => Array.from({ length: o.concurrency }, (_, w) => worker(client, w))));
}

/**
 * Takes one client's pending results with two concurrent fetchers until every queued ticket of
 * that client has come, then until an empty answer (anything after that would be a duplicate).
 * Gives up after 3 s of empty answers with tickets still missing: the ledger then flags them.
 */
async function collectPending(url: string, client: { name: string; apiKey: string }, expected: Set<string>, ledger: Ledger, anomalies: string[]): Promise<void> {
  const seen = new Set<string>();
  const fetcher = async () => {
    let emptySince: number | undefined;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const reply = await readWithRetry(`${url}/pending_results`, client.apiKey);
      const results = (reply.body as { results?: unknown[] } | undefined)?.results;
      if (reply.status !== 200 || !Array.isArray(results)) {
        anomalies.push(`${client.name}: /pending_results answered ${reply.status} ${JSON.stringify(reply.body ?? reply.error).slice(0, 200)}`);
        await sleep(200);
        continue;
      }
      for (const ticket of results) {
        ledger.deliver(client.name, ticket);
        seen.add(String((ticket as { id?: unknown }).id));
      }
      if (results.length > 0) {
        emptySince = undefined;
        continue;
      }
      if ([...expected].every((id) => seen.has(id))) return;
      emptySince ??= Date.now();
      if (Date.now() - emptySince > 3000) return;
      await sleep(100);
    }
  };
  await Promise.all([fetcher(), fetcher()]);
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

function requireBuild(): void {
  const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`the compiled CLI is missing (${cli}): run \`npm run build\` first`);
}
