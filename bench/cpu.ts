/**
 * How much of the machine other work took while a case was measured: the CPU time of the whole
 * machine (/proc/stat, steal included) minus that of this benchmark and every process it started
 * (its children, and through cutime/cstime those it has already reaped, like a finished wrk).
 * On a shared machine this says how far a figure can be trusted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface CpuSnapshot {
  readonly at: number;
  /** Busy ticks of the whole machine: everything but idle and iowait. */
  readonly machineBusy: number;
  /** Ticks of this process, its reaped children, and its live descendants. */
  readonly ours: number;
  /** Ticks of each live descendant (not this process): the servers, redis, a running wrk. */
  readonly descendants: ReadonlyMap<number, number>;
}

function machineBusyTicks(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest is counted in user
  return total - fields[3]! - fields[4]!;
}

/** pid → [ppid, utime + stime + cutime + cstime] for every process we can read. */
function processTable(): Map<number, [number, number]> {
  const table = new Map<number, [number, number]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces: fields start after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
      table.set(Number(entry), [Number(rest[1]), ticks]);
    } catch {
      /* exited meanwhile */
    }
  }
  return table;
}

export function cpuSnapshot(): CpuSnapshot {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, [ppid]] of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  let ours = 0;
  const descendants = new Map<number, number>();
  const stack = [process.pid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const ticks = table.get(pid)?.[1] ?? 0;
    ours += ticks;
    if (pid !== process.pid) descendants.set(pid, ticks);
    stack.push(...(children.get(pid) ?? []));
  }
  return { at: performance.now(), machineBusy: machineBusyTicks(), ours, descendants };
}

/**
 * CPU milliseconds the servers used between two snapshots: the descendants alive at both ends.
 * The load generator started after the first snapshot and was reaped before the second, so it
 * is not counted; neither is the benchmark process itself. `includeStarted` also counts, whole,
 * the processes started in between (a service started to drain a backlog).
 */
export function serverCpuMs(before: CpuSnapshot, after: CpuSnapshot, options: { includeStarted?: boolean } = {}): number {
  let ticks = 0;
  for (const [pid, end] of after.descendants) {
    const start = before.descendants.get(pid) ?? (options.includeStarted ? 0 : undefined);
    if (start !== undefined) ticks += end - start;
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Share of all cores (0–1) busy with work other than ours between two snapshots. */
export function otherCpuShare(before: CpuSnapshot, after: CpuSnapshot): number {
  const elapsedTicks = ((after.at - before.at) / 1000) * 100 * cpus().length; // USER_HZ is 100 on Linux
  const other = after.machineBusy - before.machineBusy - (after.ours - before.ours);
  return Math.min(1, Math.max(0, other / elapsedTicks));
}
