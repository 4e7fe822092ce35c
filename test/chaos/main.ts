/**
 * `npm run chaos [-- --duration 60s --seed 42 --clients 3 --concurrency 4 --keep-logs --mom redis|sentinel|outage --outage 20s]`: one chaos
 * run with exact accounting (run-chaos.ts); prints its figures and every violation, writes them
 * to docs/reliability.md, and exits 1 when any invariant failed.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem, release, platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatMarkdown, formatText } from './report.js';
import { runChaos } from './run-chaos.js';
import { MOM_KINDS, type MomKind } from './mom.js';

const DOC = fileURLToPath(new URL('../../docs/reliability.md', import.meta.url));

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60s' },
    seed: { type: 'string', default: '20251126' },
    clients: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    'keep-logs': { type: 'boolean', default: false },
    mom: { type: 'string', default: 'redis' },
    outage: { type: 'string', default: '20s' },
    'no-doc': { type: 'boolean', default: false },
  },
});

// Ctrl-C: exit, and let the run's exit hook kill every process it started and remove its files.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const durationMs = parseDuration(values.duration);
const seed = /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
const started = new Date();
console.log(`chaos: ${durationMs / 1000} s of chaos, seed ${seed}`);
const report = await runChaos({
  durationMs,
  seed,
  clients: Number(values.clients),
  concurrency: Number(values.concurrency),
  keepLogs: values['keep-logs'],
  mom: momKind(values.mom),
  outageMs: parseDuration(values.outage),
  log: (line) => console.log(`  ${new Date().toISOString().slice(11, 23)} ${line}`),
});
console.log(formatText(report));

if (!values['no-doc']) {
  const args = process.argv.slice(2).join(' ');
  writeFileSync(DOC, formatMarkdown(report, {
    command: `npm run chaos${args ? ` -- ${args}` : ''}`,
    date: started.toISOString(),
    machine: machine(),
    commit: commit(),
  }));
  console.log(`wrote ${DOC}`);
}
process.exitCode = report.ok ? 0 : 1;

function momKind(text: string): MomKind {
  if (!(MOM_KINDS as readonly string[]).includes(text)) throw new Error(`--mom: expected one of ${MOM_KINDS.join(', ')}, got ${JSON.stringify(text)}`);
  return text as MomKind;
}

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--duration: expected e.g. 60s, 90000ms or 2m, got ${JSON.stringify(text)}`);
  const value = Number(match[1]);
  return Math.round(match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000);
}

function machine(): string {
  const cores = cpus();
  const redis = tryRun('redis-server', ['--version']).match(/v=(\S+)/)?.[1] ?? 'unknown';
  return `${cores.length} × ${cores[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${platform()} ${release()}, Node ${process.version}, Redis ${redis}`;
}

function commit(): string {
  const sha = tryRun('git', ['rev-parse', 'HEAD']).trim() || 'unknown';
  const dirty = tryRun('git', ['status', '--porcelain']).trim() !== '';
  return dirty ? `${sha} (with uncommitted changes in the working tree)` : sha;
}

function tryRun(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}
