/**
 * Every process and temporary directory the benchmark creates is registered here, so that a
 * normal end, a failure and Ctrl-C all leave nothing behind. Children run in their own process
 * group (a signal reaches the whole group) and write their output to a log file, never to a
 * pipe that the benchmark would have to drain while it measures.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];
const liveGroups = new Set<number>();
const tempDirs = new Set<string>();
let aborting = false;

/** True once Ctrl-C (or SIGTERM) was received: nothing new may start. */
export const isAborting = () => aborting;

/** Registers `fn` to run at the end (last registered, first run); returns a function that unregisters it. */
export function onCleanup(fn: Cleanup): () => void {
  cleanups.push(fn);
  return () => {
    const at = cleanups.indexOf(fn);
    if (at >= 0) cleanups.splice(at, 1);
  };
}

export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (error) {
      process.stderr.write(`cleanup: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
  killLiveGroups();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function killLiveGroups(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveGroups.clear();
}

/** Ctrl-C, SIGTERM and a crash of the benchmark itself still clean up; `exit` is the synchronous last resort. */
export function installCleanupHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      aborting = true;
      process.stderr.write(`\nbench: ${signal}, stopping every process it started\n`);
      const forced = setTimeout(() => process.exit(130), 10_000);
      void cleanupAll().finally(() => {
        clearTimeout(forced);
        process.exit(130);
      });
    });
  }
  process.on('exit', () => {
    killLiveGroups();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A new directory under the OS's temp dir, removed at the end unless `keep`. */
export function tempDir(prefix: string, keep = false): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (!keep) tempDirs.add(dir);
  return dir;
}

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (null after a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  hasExited(): boolean;
  logTail(chars?: number): string;
  /** Signals the group; SIGKILL after `timeoutMs`. Resolves once the leader has exited. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

let counter = 0;

export function spawnProc(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, logDir: string): Proc {
  if (aborting) throw new Error('interrupted');
  const logFile = join(logDir, `${String(++counter).padStart(2, '0')}-${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  liveGroups.add(pid);
  let done = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      done = true;
      liveGroups.delete(pid);
      resolve(code);
    });
  });
  const unregister = onCleanup(() => proc.stop('SIGKILL', 5000));
  const proc: Proc = {
    name,
    pid,
    logFile,
    exited,
    hasExited: () => done,
    logTail: (chars = 2000) => readFileSync(logFile, 'utf8').slice(-chars),
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      unregister();
      if (!done) {
        try {
          process.kill(-pid, signal);
        } catch {
          /* gone */
        }
        const timer = setTimeout(() => {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      // Anything the leader left in its group goes too.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* none left */
      }
    },
  };
  return proc;
}

/** Polls `probe` until it is true; fails when `proc` exits first or after `timeoutMs`. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, proc?: Proc, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
    if (proc?.hasExited()) throw new Error(`${proc.name} exited before ${what}:\n${proc.logTail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${proc ? `:\n${proc.logTail()}` : ''}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}

export function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return response.ok;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status (VmRSS). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
