/**
 * The gateway's resident memory over many direct requests. wrk cannot stop after a number of
 * requests, so the load runs in chunks sized to ~100,000 requests at the last measured rate,
 * and RSS (/proc/<pid>/status) is sampled after each chunk, at the cumulative count wrk reports.
 */
import { cpuSnapshot, otherCpuShare } from './cpu.js';
import { runLoad } from './load.js';
import { rssBytes } from './procs.js';
import type { Row } from './report.js';
import { withSystem, type CaseSettings } from './cases.js';

export interface MemorySample {
  readonly requests: number;
  readonly rssMB: number;
}

export interface MemoryResult {
  readonly row: Row;
  readonly samples: readonly MemorySample[];
  readonly maxMB: number;
  /** RSS growth over the second half of the run, in MB. */
  readonly lateGrowthMB: number;
  readonly flat: boolean;
}

const MB = 1024 * 1024;
const CHUNK = 100_000;
/** Flat: over the second half of the run RSS grows by at most this much. */
export const FLAT_TOLERANCE_MB = 10;

export async function memoryCase(s: CaseSettings, total: number, rateHint: number | undefined, log: (line: string) => void): Promise<MemoryResult> {
  return withSystem(s, 'sqlite', ['add'], true, async (system) => {
    const pid = system.gateway!.pid;
    const url = `${system.url}/add/6/7`;
    const samples: MemorySample[] = [{ requests: 0, rssMB: rssBytes(pid) / MB }];
    let rate = rateHint ?? 5000;
    let requests = 0;
    let non2xx = 0;
    let errors = 0;
    const cpuBefore = cpuSnapshot();
    while (requests < total) {
      const want = Math.min(CHUNK, total - requests);
      const durationS = Math.min(120, Math.max(1, Math.round(want / rate)));
      const r = await runLoad({ url, durationS, connections: s.connections });
      requests += r.requests;
      non2xx += r.non2xx;
      errors += r.errors;
      rate = r.rps;
      const sample = { requests, rssMB: rssBytes(pid) / MB };
      samples.push(sample);
      log(`  memory: ${requests.toLocaleString('en-US')} requests, RSS ${sample.rssMB.toFixed(1)} MB (${Math.round(r.rps)} req/s)`);
    }
    const last = samples[samples.length - 1]!;
    const half = samples.reduce((best, x) => (Math.abs(x.requests - last.requests / 2) < Math.abs(best.requests - last.requests / 2) ? x : best));
    const maxMB = Math.max(...samples.map((x) => x.rssMB));
    const lateGrowthMB = last.rssMB - half.rssMB;
    const flat = lateGrowthMB <= FLAT_TOLERANCE_MB;
    const series = samples.map((x) => `${Math.round(x.requests / 1000)}k:${x.rssMB.toFixed(0)}`).join(' ');
    const row: Row = {
      label: `6. gateway RSS after ${last.requests.toLocaleString('en-US')} direct requests`,
      rate: last.rssMB,
      unit: 'MB',
      non2xx,
      errors,
      otherCpu: otherCpuShare(cpuBefore, cpuSnapshot()),
      note: `max ${maxMB.toFixed(0)} MB; ${lateGrowthMB >= 0 ? '+' : ''}${lateGrowthMB.toFixed(1)} MB over the second half (${flat ? 'flat' : 'growing'}); requests:MB ${series}`,
    };
    return { row, samples, maxMB, lateGrowthMB, flat };
  });
}
