/**
 * The memory of a chaos run's processes: every line each service and gateway printed, across
 * its restarts, in one file per component under a temporary directory; and every exit that the
 * chaos script did not cause (a process that died on its own is an anomaly worth reporting).
 * After the run, `grep` pulls the log lines that mention a request's key or a ticket's id, as
 * evidence next to a violation.
 */
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spawned } from '../helpers/processes.js';

export interface UnexpectedExit {
  readonly name: string;
  readonly at: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly tail: string;
}

export class ProcessLog {
  readonly dir = mkdtempSync(join(tmpdir(), 'calcmesh-chaos-'));
  readonly unexpectedExits: UnexpectedExit[] = [];
  private readonly expected = new Set<number>();
  private readonly live = new Map<string, Spawned>();
  private readonly files = new Map<string, WriteStream>();
  private closed = false;
  private ending = false;

  /** Follows one process: its output goes to `<name>.log` (appended across restarts). */
  attach(name: string, spawned: Spawned): void {
    const pid = spawned.child.pid!;
    const file = this.file(name);
    this.live.set(name, spawned);
    file.write(`--- ${new Date().toISOString()} pid ${pid} ---\n${spawned.output()}`);
    const write = (chunk: Buffer | string) => {
      if (!this.closed) file.write(chunk);
    };
    spawned.child.stdout?.on('data', write);
    spawned.child.stderr?.on('data', write);
    spawned.child.once('exit', (code, signal) => {
      write(`--- ${new Date().toISOString()} pid ${pid} exited (${signal ?? code}) ---\n`);
      if (this.live.get(name) === spawned) this.live.delete(name);
      if (this.expected.delete(pid) || this.ending) return;
      this.unexpectedExits.push({ name, at: Date.now(), code, signal, tail: spawned.output().slice(-2000) });
    });
  }

  /** From now on every exit is expected: the run is over and tears its cluster down. */
  endOfRun(): void {
    this.ending = true;
  }

  /** Flushes and closes every log file; call before grep(). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.files.values()].map((f) => new Promise<void>((resolve) => f.end(resolve))));
    this.files.clear();
  }

  private file(name: string): WriteStream {
    let file = this.files.get(name);
    if (!file) {
      file = createWriteStream(join(this.dir, `${name.replace(/[^\w.-]/g, '_')}.log`), { flags: 'a' });
      this.files.set(name, file);
    }
    return file;
  }

  /** The next exit of this process is the chaos script's doing. */
  expectExit(spawned: Spawned | undefined): void {
    if (spawned?.child.pid !== undefined) this.expected.add(spawned.child.pid);
  }

  /** Process groups of every process followed and still running (for a last-resort kill). */
  livePids(): number[] {
    return [...this.live.values()].filter((s) => s.child.exitCode === null && s.child.signalCode === null).map((s) => s.child.pid!);
  }

  /** Log lines (of any component) that contain one of the needles, at most `limit`. */
  grep(needles: readonly string[], limit = 12): string[] {
    const wanted = needles.filter((n) => n.length >= 8);
    if (wanted.length === 0) return [];
    const found: { at: string; text: string }[] = [];
    for (const file of readdirSync(this.dir)) {
      for (const line of readFileSync(join(this.dir, file), 'utf8').split('\n')) {
        if (!wanted.some((n) => line.includes(n))) continue;
        const text = compact(line);
        found.push({ at: text.slice(0, 13), text: `${file.replace(/\.log$/, '')}: ${text}` });
      }
    }
    // In time order across components: the story of the request as it happened.
    return found.sort((a, b) => a.at.localeCompare(b.at)).slice(0, limit).map((f) => f.text);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A pino JSON line as one short readable line: time, message, then the fields that matter (no stacks). */
export function compact(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.slice(0, 300);
  }
  const { time, msg, level: _level, pid: _pid, component: _component, hostname: _hostname, err, ...rest } = entry;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const error = err && typeof err === 'object' ? ` err="${String((err as { message?: unknown }).message).slice(0, 160)}"` : '';
  return `${String(time).slice(11)} ${String(msg)} ${fields.join(' ')}${error}`.slice(0, 400);
}
