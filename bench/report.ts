/** The machine, and the table: printed as text on the console and as Markdown for docs/benchmarks.md. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';

export interface Row {
  readonly label: string;
  /** req/s or tasks/s; undefined when the case did not run. */
  readonly rate?: number;
  readonly unit: 'req/s' | 'tasks/s' | 'MB' | 'ms';
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly non2xx?: number;
  readonly errors?: number;
  /** Share of the machine's CPU (0–1) that processes other than the benchmark's took meanwhile. */
  readonly otherCpu?: number;
  /** CPU time all the servers of the case (not the load generator) spent per request, in µs. */
  readonly cpuUs?: number;
  readonly note: string;
}

export interface Ratio {
  readonly label: string;
  readonly value: number | undefined;
}

export interface Target {
  readonly figure: string;
  readonly target: string;
  readonly measured: string;
  readonly ok: boolean | undefined;
}

export interface Report {
  readonly command: string;
  readonly date: string;
  readonly machine: Record<string, string>;
  readonly settings: string;
  readonly rows: readonly Row[];
  readonly ratios: readonly Ratio[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

const run = (command: string, args: string[]): string => {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    const out = (error as { stdout?: string }).stdout;
    return out ? out.trim() : 'unavailable';
  }
};

export function machineInfo(tool: string): Record<string, string> {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const commit = run('git', ['rev-parse', '--short=12', 'HEAD']);
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    CPU: `${cpuModel}, ${cpus().length} cores (shared by the load generator and the servers)`,
    kernel: `Linux ${release()}`,
    Node: process.version,
    'load generator': tool === 'wrk' ? (/wrk (\S+)/.exec(run('wrk', ['-v']))?.[1] ?? 'wrk').replace(/^/, 'wrk ') : 'autocannon, in the benchmark process (latency in whole ms)',
    Redis: /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1] ?? 'unavailable',
    commit: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
  };
}

const fmtRate = (row: Row) => (row.rate === undefined ? '—' : row.unit === 'MB' ? `${row.rate.toFixed(0)} MB` : `${Math.round(row.rate).toLocaleString('en-US')} ${row.unit}`);
const fmtMs = (ms: number | undefined) => (ms === undefined ? '—' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const fmtCount = (n: number | undefined) => (n === undefined ? '—' : String(n));
export const fmtRatio = (value: number | undefined) => (value === undefined ? '—' : value.toFixed(2));
const mark = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? '✓' : '✗');

function cells(row: Row): string[] {
  const other = row.otherCpu === undefined ? '—' : `${Math.round(row.otherCpu * 100)} %`;
  const cpu = row.cpuUs === undefined ? '—' : String(Math.round(row.cpuUs));
  return [row.label, fmtRate(row), fmtMs(row.p50Ms), fmtMs(row.p99Ms), fmtCount(row.non2xx), fmtCount(row.errors), cpu, other, row.note];
}

const HEADER = ['case', 'rate', 'p50 ms', 'p99 ms', 'non-2xx', 'socket errors', 'server CPU µs/req', 'others\' CPU', 'notes'];

function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(header: string[], body: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export function renderText(report: Report): string {
  return [
    `calcmesh benchmark — ${report.date}`,
    ...Object.entries(report.machine).map(([k, v]) => `  ${k}: ${v}`),
    `  ${report.settings}`,
    '',
    textTable(HEADER, report.rows.map(cells)),
    '',
    ...report.ratios.map((r) => `${r.label}: ${fmtRatio(r.value)}`),
    '',
    textTable(['figure', 'target', 'measured', ''], report.targets.map((t) => [t.figure, t.target, t.measured, mark(t.ok)])),
    '',
    ...report.notes.map((n) => `- ${n}`),
  ].join('\n');
}

export function renderMarkdown(report: Report): string {
  return [
    '# Benchmarks',
    '',
    'Produced by `npm run bench` (bench/run.ts): every case in one run on one machine, the bare',
    'Node server as the ceiling measured side by side. Absolute figures move from run to run, a lot',
    "when other work shares the machine (the others' CPU column); compare ratios within one run.",
    '',
    `Command: \`${report.command}\`  `,
    `Date: ${report.date}`,
    '',
    ...Object.entries(report.machine).map(([k, v]) => `- ${k}: ${v}`),
    `- ${report.settings}`,
    '',
    mdTable(HEADER, report.rows.map(cells)),
    '',
    '## Ratios',
    '',
    mdTable(['ratio', 'value'], report.ratios.map((r) => [r.label, fmtRatio(r.value)])),
    '',
    '## Targets (issues 8 and 13)',
    '',
    mdTable(['figure', 'target', 'measured', 'met'], report.targets.map((t) => [t.figure, t.target, t.measured, mark(t.ok)])),
    '',
    '## Notes',
    '',
    ...report.notes.map((n) => `- ${n}`),
  ].join('\n');
}

const GENERATED = /<!-- bench:begin[^>]*-->[\s\S]*?<!-- bench:end -->/;

/**
 * The document with this run's part replaced: what `npm run bench` measures sits between two
 * markers; the hand-written sections around it (profiles, one-off measurements) are kept.
 */
export function withGenerated(previous: string, report: Report): string {
  const part = `<!-- bench:begin (written by npm run bench; edit outside these markers) -->\n${renderMarkdown(report)}\n<!-- bench:end -->`;
  return GENERATED.test(previous) ? previous.replace(GENERATED, () => part) : `${part}\n${previous ? `\n${previous}` : ''}`;
}
