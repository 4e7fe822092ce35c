/**
 * `npm run bench [-- options]`: the table of issue 8, every case measured in one run beside
 * the ceiling of this machine (a bare node:http server), written to docs/benchmarks.md.
 * Needs the compiled CLI (`npm run bench` builds first), wrk (or autocannon) and redis-server.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { bareCase, directCase, drainCase, evaluateCase, interleavedCase, queuedCase, type CaseSettings, type InterleavedResult } from './cases.js';
import { loadTool, preferAutocannon } from './load.js';
import { FLAT_TOLERANCE_MB, memoryCase, type MemoryResult } from './memory.js';
import { recoveryCase, type RecoveryResult } from './recovery.js';
import { cleanupAll, installCleanupHandlers, isAborting, tempDir } from './procs.js';
import { fmtRatio, machineInfo, renderText, withGenerated, type Ratio, type Report, type Row, type Target } from './report.js';
import { SERVER_LOG_LEVEL } from './system.js';

const CASES = ['bare', 'direct', 'direct-grpc-js', 'direct-stream', 'queued-redis', 'queued-sqlite', 'drain-redis', 'drain-sqlite', 'evaluate', 'evaluate-stream', 'interleaved', 'recovery', 'memory'] as const;
type CaseName = (typeof CASES)[number];

const USAGE = `usage: npm run bench -- [options]
  --duration S         seconds of measured load per case (default 5)
  --warmup S           seconds of load before each measurement, not counted (default 1)
  --connections N      wrk connections (default 64; one wrk thread)
  --backlog N          tasks in the drain cases (default 100000)
  --drain-timeout S    give up a drain after this long (default 60)
  --recoveries N       kill/restart cycles of the recovery case (default 7)
  --rounds N           rounds of the interleaved case (default 5): bare, direct and evaluator in turn
  --memory             also the gateway's RSS over --memory-requests direct requests (takes minutes)
  --memory-requests N  (default 1000000)
  --cases a,b,…        only these: ${CASES.join(', ')} (docs are then not written unless --out is given)
  --out FILE           where the Markdown goes (default docs/benchmarks.md)
  --keep-logs          keep the servers' log files (their directory is printed)
  --autocannon         load with autocannon even when wrk is installed`;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        connections: { type: 'string', default: '64' },
        backlog: { type: 'string', default: '100000' },
        'drain-timeout': { type: 'string', default: '60' },
        recoveries: { type: 'string', default: '7' },
        rounds: { type: 'string', default: '5' },
        memory: { type: 'boolean', default: false },
        'memory-requests': { type: 'string', default: '1000000' },
        cases: { type: 'string' },
        out: { type: 'string' },
        'keep-logs': { type: 'boolean', default: false },
        autocannon: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    process.exit(2);
  }
}
const opts = parseOptions();
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

function positive(name: string, raw: string, allowZero = false): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    console.error(`--${name} must be a whole number${allowZero ? '' : ' above 0'}, got ${JSON.stringify(raw)}\n${USAGE}`);
    process.exit(2);
  }
  return value;
}

const selected = new Set<CaseName>(
  opts.cases
    ? opts.cases.split(',').map((c) => {
        if (!(CASES as readonly string[]).includes(c)) {
          console.error(`unknown case ${JSON.stringify(c)}\n${USAGE}`);
          process.exit(2);
        }
        return c as CaseName;
      })
    : CASES.filter((c) => c !== 'memory' || opts.memory),
);
const outFile = opts.out ?? (opts.cases ? undefined : 'docs/benchmarks.md');
const memoryRequests = positive('memory-requests', opts['memory-requests']);

if (opts.autocannon) preferAutocannon();
installCleanupHandlers();
const settings: CaseSettings = {
  durationS: positive('duration', opts.duration),
  warmupS: positive('warmup', opts.warmup, true),
  connections: positive('connections', opts.connections),
  backlog: positive('backlog', opts.backlog),
  drainTimeoutS: positive('drain-timeout', opts['drain-timeout']),
  logDir: tempDir('calcmesh-bench-logs-', opts['keep-logs']),
};
if (opts['keep-logs']) process.stderr.write(`bench: server logs in ${settings.logDir}\n`);
const log = (line: string) => process.stderr.write(`${line}\n`);

const rows = new Map<CaseName, Row>();
let memory: MemoryResult | undefined;
let recovery: RecoveryResult | undefined;
let interleaved: InterleavedResult | undefined;
let failed = false;

async function step(name: CaseName, label: string, body: () => Promise<Row>): Promise<void> {
  if (!selected.has(name) || isAborting()) return;
  log(`bench: ${label} …`);
  const started = Date.now();
  try {
    const row = await body();
    rows.set(name, row);
    log(`bench: ${label}: ${row.unit === 'MB' ? `${row.rate?.toFixed(0)} MB` : `${Math.round(row.rate ?? 0)} ${row.unit}`} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  } catch (error) {
    failed = true;
    const message = error instanceof Error ? error.message : String(error);
    rows.set(name, { label: `${label} (failed)`, unit: 'req/s', note: `FAILED: ${message.split('\n')[0]}` });
    log(`bench: ${label} FAILED:\n${message}`);
  }
}

const begun = Date.now();
try {
  await step('bare', 'bare node:http', () => bareCase(settings));
  await step('direct', 'gateway direct path', () => directCase(settings));
  await step('direct-grpc-js', 'gateway direct path through grpc-js', () => directCase(settings, 'grpc-js'));
  await step('direct-stream', 'gateway direct path over the Stream rpc', () => directCase(settings, 'stream'));
  await step('queued-redis', 'queued path, Redis', () => queuedCase(settings, 'redis'));
  await step('queued-sqlite', 'queued path, SQLite', () => queuedCase(settings, 'sqlite'));
  await step('drain-redis', 'drain, Redis', () => drainCase(settings, 'redis'));
  await step('drain-sqlite', 'drain, SQLite', () => drainCase(settings, 'sqlite'));
  await step('evaluate', 'evaluator path', () => evaluateCase(settings));
  await step('evaluate-stream', 'evaluator path over the Stream rpc', () => evaluateCase(settings, 'stream'));
  await step('interleaved', 'bare, direct and evaluator in turn', async () => {
    interleaved = await interleavedCase(settings, positive('rounds', opts.rounds));
    return interleaved.rows[2]!;
  });
  await step('recovery', 'recovery after a restart', async () => {
    recovery = await recoveryCase(settings, positive('recoveries', opts.recoveries));
    return recovery.row;
  });
  await step('memory', 'gateway memory', async () => {
    memory = await memoryCase(settings, memoryRequests, (rows.get('direct-stream') ?? rows.get('direct'))?.rate, log);
    return memory.row;
  });
} finally {
  await cleanupAll();
}

const rate = (name: CaseName) => rows.get(name)?.rate;
const div = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a / b);
const directOverBare = div(rate('direct'), rate('bare'));
const queuedRedis = div(rate('queued-redis'), rate('direct'));
const queuedSqlite = div(rate('queued-sqlite'), rate('direct'));
const ratios: Ratio[] = [
  { label: 'direct ÷ bare', value: directOverBare },
  { label: 'direct (node:http2 client) ÷ direct (grpc-js client)', value: div(rate('direct'), rate('direct-grpc-js')) },
  { label: 'queued (Redis) ÷ direct', value: queuedRedis },
  { label: 'queued (SQLite) ÷ direct', value: queuedSqlite },
  { label: 'evaluator ÷ direct', value: div(rate('evaluate'), rate('direct')) },
  { label: 'direct over the Stream rpc ÷ bare', value: div(rate('direct-stream'), rate('bare')) },
  { label: 'direct over the Stream rpc ÷ direct unary (node:http2)', value: div(rate('direct-stream'), rate('direct')) },
  { label: 'evaluator over the Stream rpc ÷ direct over the Stream rpc', value: div(rate('evaluate-stream'), rate('direct-stream')) },
  { label: 'interleaved: direct ÷ bare (median of the rounds)', value: interleaved?.directOverBare },
  { label: 'interleaved: evaluator ÷ direct (median of the rounds)', value: interleaved?.evaluateOverDirect },
];
const atLeast = (value: number | undefined, min: number) => (value === undefined ? undefined : value >= min);
const tasks = (name: CaseName) => (rate(name) === undefined ? '—' : `${Math.round(rate(name)!).toLocaleString('en-US')} tasks/s`);
const p99 = rows.get('direct')?.p99Ms;
const streamOverBare = div(rate('direct-stream'), rate('bare'));
const streamP99 = rows.get('direct-stream')?.p99Ms;
const evalOverDirectStream = div(rate('evaluate-stream'), rate('direct-stream'));
const targets: Target[] = [
  { figure: 'direct over the Stream rpc ÷ bare Node HTTP, 64 connections (issue 13)', target: '≥ 0.5', measured: fmtRatio(streamOverBare), ok: atLeast(streamOverBare, 0.5) },
  { figure: 'direct over the Stream rpc, p99 at 64 connections (issue 13)', target: '≤ 15 ms', measured: streamP99 === undefined ? '—' : `${streamP99.toFixed(1)} ms`, ok: streamP99 === undefined ? undefined : streamP99 <= 15 },
  { figure: 'evaluator ÷ direct, both over the Stream rpc (issue 13)', target: '≥ 0.35', measured: fmtRatio(evalOverDirectStream), ok: atLeast(evalOverDirectStream, 0.35) },
  { figure: 'direct ÷ bare, interleaved, median of the rounds (issue 13)', target: '≥ 0.5', measured: fmtRatio(interleaved?.directOverBare), ok: atLeast(interleaved?.directOverBare, 0.5) },
  { figure: 'evaluator ÷ direct, interleaved, median of the rounds (issue 13)', target: '≥ 0.35', measured: fmtRatio(interleaved?.evaluateOverDirect), ok: atLeast(interleaved?.evaluateOverDirect, 0.35) },
  {
    figure: 'recovery: port accepts → first direct 200 (issue 13)',
    target: '≤ 300 ms',
    measured: recovery ? `median ${recovery.medianMs.toFixed(0)} ms, max ${recovery.maxMs.toFixed(0)} ms` : '—',
    ok: recovery ? recovery.maxMs <= 300 : undefined,
  },
  { figure: 'drain, Redis (AOF everysec) (issue 13)', target: '≥ 35,000 tasks/s', measured: tasks('drain-redis'), ok: atLeast(rate('drain-redis'), 35_000) },
  { figure: 'direct path with unary calls (CALC_GRPC_CLIENT=h2) ÷ bare Node HTTP (issue 8, when unary was the default)', target: '≥ 0.25', measured: fmtRatio(directOverBare), ok: atLeast(directOverBare, 0.25) },
  { figure: 'direct path with unary calls, p99 at 64 connections (issue 8)', target: '≤ 20 ms', measured: p99 === undefined ? '—' : `${p99.toFixed(1)} ms`, ok: p99 === undefined ? undefined : p99 <= 20 },
  { figure: 'queued path (Redis) ÷ direct path with unary calls (issue 8)', target: '≥ 0.8', measured: fmtRatio(queuedRedis), ok: atLeast(queuedRedis, 0.8) },
  { figure: 'queued path (SQLite) ÷ direct path with unary calls (issue 8)', target: '≥ 0.8', measured: fmtRatio(queuedSqlite), ok: atLeast(queuedSqlite, 0.8) },
  { figure: 'backlog drain, Redis (issue 8)', target: '≥ 20,000 tasks/s', measured: tasks('drain-redis'), ok: atLeast(rate('drain-redis'), 20_000) },
  { figure: 'backlog drain, SQLite (issue 8)', target: '≥ 20,000 tasks/s', measured: tasks('drain-sqlite'), ok: atLeast(rate('drain-sqlite'), 20_000) },
  {
    figure: `gateway RSS after ${memoryRequests.toLocaleString('en-US')} requests`,
    target: '≤ 150 MB, flat',
    measured: memory ? `max ${memory.maxMB.toFixed(0)} MB, ${memory.lateGrowthMB >= 0 ? '+' : ''}${memory.lateGrowthMB.toFixed(1)} MB over the second half` : 'not run (npm run bench -- --memory)',
    ok: memory ? memory.maxMB <= 150 && memory.flat : undefined,
  },
];

const busiest = Math.max(0, ...[...rows.values()].map((r) => r.otherCpu ?? 0));
const contention = busiest > 0.1
  ? [`This run shared the machine: other processes took up to ${Math.round(busiest * 100)} % of the CPU during a case; rerun on a quiet machine before comparing with the targets.`]
  : [];
const args = process.argv.slice(2);
const report: Report = {
  command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
  date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  machine: machineInfo(loadTool()),
  settings:
    `load: ${loadTool() === 'wrk' ? `wrk -t1 -c${settings.connections} --latency` : `autocannon -c ${settings.connections}`}, ` +
    `${settings.durationS} s per case after a ${settings.warmupS} s warm-up; servers run with LOG_LEVEL=${SERVER_LOG_LEVEL}; ` +
    `whole run ${Math.round((Date.now() - begun) / 1000)} s`,
  rows: [...rows.entries()].flatMap(([name, row]) => (name === 'interleaved' && interleaved ? interleaved.rows : [row])),
  ratios,
  targets,
  notes: [
    ...contention,
    `Every server is its own process, started from the compiled CLI (\`node bin/calcmesh.js gateway | service <op>\`) on free ports of 127.0.0.1, logging at ${SERVER_LOG_LEVEL} to a file; the load generator shares the same cores.`,
    'Non-2xx counts every response outside 2xx (wrk counts 3xx with them); the expected 202s of the queued path are 2xx. Before measuring, each case checks one answer by hand (200 with result 13 or 35, or a 202 ticket), and the queue depth before and after shows that the direct cases queued nothing and that the queued cases stored one task per response.',
    'Queued path: the add target points at a port nothing listens on. The first calls fail (UNAVAILABLE) and open the circuit breaker of that replica; from then on a request is not attempted, it is stored durably and answered 202. The gateway logs one info line per queued request (not written here: the servers log at warn).',
    'Drain: the backlog is written through the queue API (`enqueue`, 500 at a time), then `calcmesh service add` is started with its default drain concurrency; the rate counts from the moment it accepts connections to a depth of 0 (polled every 100 ms), and the first and last tickets are checked.',
    'Server CPU µs/req: the CPU time of every server process of the case (gateway, services, Redis; not wrk, not the benchmark) during the measurement, per request or per drained task (for a drain: the service, start-up included, and Redis, from the start of the service to the empty queue). It is what a request costs; other load inflates it less than it depresses req/s.',
    "Others' CPU: the share of all cores that processes other than the benchmark's own used during the measurement (/proc/stat minus the benchmark's process tree). Above ~10 % the figures of that case are depressed by other work on the machine.",
    'Recovery: the add service (over the Stream rpc, the default) is killed with SIGKILL; once its circuit is open it is started again on its port; from the first successful TCP connect to its port (probed every 2 ms) requests are sent one after another until one is answered 200, and the time to that answer is the figure. The gateway sees the return through its stream to the service, which it dials every 50 ms while the service is away.',
    'Interleaved: one bare server and one whole system (gateway and the five services over the Stream rpc, SQLite) stay up while the three loads take turns for the case duration each, the order rotated every round; the ratios are the medians of the per-round ratios, so that the machine\'s drift between cases (±25 % within minutes) cancels. The single cases above start their own processes and run tens of seconds apart.',
    `Memory: the direct path in chunks of ~100,000 requests, RSS from /proc/<pid>/status after each; flat means at most ${FLAT_TOLERANCE_MB} MB of growth over the second half of the run.`,
  ],
};

console.log(`\n${renderText(report)}`);
if (outFile) {
  const path = resolve(outFile);
  writeFileSync(path, withGenerated(existsSync(path) ? readFileSync(path, 'utf8') : '', report));
  log(`\nbench: wrote ${outFile}`);
}
process.exit(failed ? 1 : 0);
