import { spawn, type ChildProcess } from 'node:child_process';

/** Is any process of this process group still alive? */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Spawned {
  readonly child: ChildProcess;
  /** Everything the process printed so far, stdout and stderr. */
  output(): string;
  /** Resolves when the output matches, rejects after timeoutMs or when the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Signals the whole process group and waits (bounded) until no member is left; SIGKILL at the end. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

/** Starts a command in its own process group, so that a test can account for every process it started. */
export function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Spawned {
  const child = spawn(command, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString();
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const pgid = child.pid!;

  return {
    child,
    output: () => text,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const done = (error?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve();
        };
        const check = () => { if (pattern.test(text)) done(); };
        const onExit = () => done(new Error(`process exited before printing ${pattern}; output:\n${text.slice(-3000)}`));
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; output:\n${text.slice(-3000)}`)), timeoutMs);
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (!groupAlive(pgid)) return;
      try { process.kill(-pgid, signal); } catch { /* already gone */ }
      const until = Date.now() + timeoutMs;
      for (let pause = 10; groupAlive(pgid) && Date.now() < until; pause = Math.min(pause * 2, 200)) {
        await new Promise((r) => setTimeout(r, pause));
      }
      if (groupAlive(pgid)) {
        process.kill(-pgid, 'SIGKILL');
        throw new Error(`process group ${pgid} still alive ${timeoutMs} ms after ${signal}; killed it`);
      }
    },
  };
}
