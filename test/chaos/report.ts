/** The figures of a chaos run, as terminal text and as the Markdown of docs/reliability.md. */
import type { ChaosReport } from './run-chaos.js';

/** Violations printed with their request and log evidence; the rest are counted. */
const MAX_DETAILED = 25;
/** Violations listed at all (one line each after the detailed ones). */
const MAX_LISTED = 300;

const ms = (value: number | undefined) => (value === undefined ? 'n/a' : `${(value / 1000).toFixed(1)} s`);

/** Name and value of every headline figure, in the order they are printed. */
export function figures(report: ChaosReport): [string, string][] {
  const { counts, kills, drain } = report;
  const statuses = Object.entries(counts.byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([status, n]) => `${status === '0' ? 'no answer' : status}: ${n}`)
    .join(', ');
  return [
    ['MOM', report.mom === 'sentinel' ? 'Sentinel (master + replica + 3 sentinels, CALC_REDIS_MIN_REPLICAS=1): each "Redis restart" kills the master -9' : report.mom === 'outage' ? 'one Redis, each "Redis restart" a kill -9 and an outage (the outbox takes the writes)' : 'one Redis (AOF always), restarted gracefully'],
    ['requests', `${counts.requests} (${report.clients} clients × ${report.concurrency} in flight, paced to ${report.ratePerS}/s), plus ${counts.replays} deliberate replays of a key`],
    ['attempts', `${counts.attempts} — ${statuses}`],
    ['retries after no answer', String(counts.retries)],
    ['kills', `${kills['service-kill']} service kill -9, ${kills['service-stop']} service SIGSTOP/SIGCONT, ${kills['gateway-kill']} gateway kill -9, ${kills['redis-restart']} Redis restarts`],
    ['200 (answered directly)', String(counts.ok200)],
    ['202 (queued, ticket issued)', `${counts.queued202} (${counts.tickets} distinct tickets, ${counts.delivered} results delivered by /pending_results)`],
    ['4xx (refused at once)', String(counts.rejected4xx)],
    ['slow expressions (longer than a lease)', `${counts.slow}, ${counts.slowQueued} of them queued (every answer of add to the evaluator delayed ${report.slowAdd.delayMs} ms; lease ${report.slowAdd.leaseMs} ms)`],
    ['HEAD / OPTIONS reads during the window', String(report.readOnlyPolls)],
    ['lost', String(counts.lost)],
    ['doubled', String(counts.doubled)],
    ['wrong', String(counts.wrong)],
    ['misdelivered', String(counts.misdelivered)],
    ['max drain time after a repair', ms(drain.maxAfterRestoreMs)],
    ['drain time after the final restore', ms(drain.finalMs)],
    ['largest backlog seen', `${drain.maxDepth} tasks`],
    ['wall time', `${ms(report.wallMs)} (${Object.entries(report.phases).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})`],
  ];
}

/** `+12.3 s service-kill add#1 1821 ms → 0.4 s` for every failure, in order. */
function timeline(report: ChaosReport): string {
  const first = report.events[0]?.startedAt ?? 0;
  return report.events
    .map((e) => `+${((e.startedAt - first) / 1000).toFixed(1)} s ${e.kind} ${e.target} ${(e.restoredAt ?? e.startedAt) - e.startedAt} ms${e.drainMs === undefined ? '' : ` → ${ms(e.drainMs)}${e.drainedLast ? ` (${e.drainedLast} last)` : ''}`}`)
    .join('; ');
}

export function formatText(report: ChaosReport): string {
  const lines = [`chaos run, seed ${String(report.seed)}, ${ms(report.durationMs)} of chaos: ${report.ok ? 'PASS' : 'FAIL'}`];
  const width = Math.max(...figures(report).map(([name]) => name.length));
  for (const [name, value] of figures(report)) lines.push(`  ${name.padEnd(width)}  ${value}`);
  lines.push(`  kills by target: ${Object.entries(report.kills.byTarget).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  lines.push(`  failures (start, kind, target, lasted, drained after repair): ${timeline(report)}`);
  if (report.counts.unrecorded200 > 0) {
    lines.push(`  note: ${report.counts.unrecorded200} direct 200s have no ticket to read (answered while the queue was unreachable)`);
  }
  const byKind = new Map<string, number>();
  for (const v of report.violations) byKind.set(`${v.category}/${v.kind}`, (byKind.get(`${v.category}/${v.kind}`) ?? 0) + 1);
  if (byKind.size > 0) lines.push(`  violations: ${[...byKind].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  for (const v of report.violations.slice(0, MAX_DETAILED)) {
    lines.push(`VIOLATION [${v.category}/${v.kind}] ${v.detail}`);
    if (v.id) lines.push(`    ticket  ${v.id}`);
    if (v.request) lines.push(`    request ${v.request}`);
    for (const e of v.evidence) lines.push(`    log     ${e}`);
  }
  for (const v of report.violations.slice(MAX_DETAILED, MAX_LISTED)) lines.push(`VIOLATION [${v.category}/${v.kind}] ${v.detail} — ${v.request ?? v.id ?? ''}`);
  if (report.violations.length > MAX_LISTED) lines.push(`… and ${report.violations.length - MAX_LISTED} more violations`);
  for (const a of report.anomalies) lines.push(`ANOMALY ${a}`);
  if (report.logsDir) lines.push(`process logs kept in ${report.logsDir}`);
  return lines.join('\n');
}

/** The violations of a run by kind, a few in full with their log evidence, and its anomalies. */
function problems(report: ChaosReport): string {
  if (report.violations.length === 0 && report.anomalies.length === 0) return '';
  const byKind = new Map<string, number>();
  for (const v of report.violations) byKind.set(`${v.category}/${v.kind}`, (byKind.get(`${v.category}/${v.kind}`) ?? 0) + 1);
  const examples = report.violations.slice(0, 5).map((v) =>
    [`- [${v.category}/${v.kind}] ${v.detail}${v.request ? ` — ${v.request}` : ''}`, ...v.evidence.map((e) => `  - \`${e.replace(/`/g, "'")}\``)].join('\n'));
  return `
## Violations and anomalies of this run

${[...byKind].map(([kind, n]) => `- ${kind}: ${n}`).join('\n')}

${report.violations.length > 0 ? `The first ${examples.length}, with the log lines that mention their key or ticket:\n\n${examples.join('\n')}\n` : ''}${report.anomalies.map((a) => `- anomaly: ${a.split('\n')[0]}`).join('\n')}
`;
}

export interface Provenance {
  readonly command: string;
  readonly date: string;
  readonly machine: string;
  readonly commit: string;
}

export function formatMarkdown(report: ChaosReport, p: Provenance): string {
  const rows = figures(report).map(([name, value]) => `| ${name} | ${value.replace(/\|/g, '\\|')} |`);
  const events = timeline(report);
  return `# Reliability

calcmesh claims that **nothing accepted is lost or computed into two answers, and each result goes
to its owner once**. This page holds the measured evidence: a chaos run with exact accounting.

## How it is measured

\`npm run chaos\` (test/chaos/) starts a private \`redis-server\` with AOF and \`appendfsync always\`, and
over it a cluster of real processes: two replicas of add, one each of subtract, multiply, divide
and the evaluator, and the gateway, with \`CALC_API_KEYS\` for ${report.clients} clients,
\`CALC_LEASE_MS=2000\` and \`CALC_DEADLINE_MS=500\`. For the chaos window the clients send a bounded
load (${report.ratePerS} new requests per second at most, loopback only) of the four operations with random
operands (negative, fractional, exponents, division by zero, overflow), random expressions whose
value the test computes itself, and invalid input (bad operands, unknown operations, malformed
expressions). Every request carries its own \`Idempotency-Key\`; a request that gets no answer
(connection refused or reset, 503) is sent again, same request, same key, with backoff. Some
requests are sent twice at once, some again right after their answer, and a fifth of all once more
after the run, as a client that lost a response would.

Meanwhile a script drawn from the seed kills services with \`kill -9\` (the evaluator and an add
replica at least) and restarts them, pauses one with SIGSTOP and resumes it, kills the gateway with
\`kill -9\` and restarts it, and restarts Redis. Then it restores everything, waits for the queues to
drain, reads every ticket twice (and once as another client), and takes each client's
\`/pending_results\` with two concurrent fetchers until every ticket has come.

Two additions since issue 12: the evaluator reaches add through a proxy that delays every answer
by ${report.slowAdd.delayMs} ms, and 3 % of the requests are chains of 16–24 additions, so a queued one runs
2.4–3.6 s against a ${report.slowAdd.leaseMs} ms lease (its consumer must keep renewing its lease); and all along, each
client sends HEAD and OPTIONS of \`/pending_results\` and HEAD of its latest ticket every 100 ms
(none may take a delivery away).

The ledger (test/chaos/ledger.ts) then requires that: every 200 carries the reference result; every
4xx is the expected one for invalid input and no valid request got one; every 202 ticket is done
with the reference result and names the request's own input; no ticket is unreadable or still
queued; no key was answered under two ids; every observation of one id tells the same outcome;
each queued result is delivered by \`/pending_results\` exactly once, to its owner; another
client's ticket is a 404; and no 5xx but 503 was ever sent. The run fails on any violation, and on
any process that died without being killed.

## Latest run

Command: \`${p.command}\`
Date: ${p.date}
Machine: ${p.machine}
Commit: ${p.commit}
Seed: ${String(report.seed)}, chaos window ${ms(report.durationMs)}, result: **${report.ok ? 'PASS' : 'FAIL'}**

| figure | value |
| --- | --- |
${rows.join('\n')}

Failures caused, in order (start from the first, kind, target, how long it lasted until repaired,
and how long its queues then took to be empty): ${events}.

Drain times are measured through \`/v1/status\` (every queue's depth and in-flight count) sampled
five times a second; a repair followed by another failure of the same queue before it emptied
counts until it finally did, so they are upper bounds. A service failure also fills the
evaluator's queue (expressions that need the service wait there, retried with a backoff that grows
to 10 s), which is why the evaluator's queue is usually the last to be empty.
${problems(report)}
## What it does not show

- Redis itself was restarted gracefully (SIGTERM, AOF flushed); a \`kill -9\` or power loss of the
  Redis host is covered by \`appendfsync always\` in principle but not exercised here.
- All processes share one host and the loopback interface: no partitions, no clock skew.
- Results are read back well within \`CALC_RESULT_TTL_S\`; expiry is not exercised.
`;
}
