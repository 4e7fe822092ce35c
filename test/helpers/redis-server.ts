/**
 * A private redis-server for one test file: a free port, a temporary --dir, no RDB snapshots,
 * AOF on request. Never the Redis on 6379. The process is killed and its directory removed by
 * stop(), and killed at the latest when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Graceful shutdown (AOF flushed), then the same server again on the same port and dir. */
  restart(): Promise<void>;
  /** SIGKILL, as a crash: the dir stays, restart() brings it back. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that accepts connections and never answers, then answers again. */
  pause(): void;
  resume(): void;
  /** Kills the server and removes its dir; the end of its life. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  readonly appendonly?: boolean;
  /** With appendonly: 'always' loses nothing on a crash, 'everysec' up to a second. */
  readonly appendfsync?: 'always' | 'everysec';
  /** requirepass: the URL then carries it, as `redis://:password@host:port`. */
  readonly password?: string;
  /** More redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6380']`. */
  readonly args?: readonly string[];
}

const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not on PATH: install the Debian package `redis-server` (apt-get install redis-server)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  const args = () => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
    '--appendonly', options.appendonly ? 'yes' : 'no', '--appendfsync', options.appendfsync ?? 'everysec',
    '--logfile', join(dir, 'redis.log'),
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(options.args ?? []),
  ];

  async function launch(samePort: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (!samePort) port = await freePort();
      child = spawn('redis-server', args(), { stdio: 'ignore' });
      running.add(child);
      const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child.once('exit', () => running.delete(child!));
      const up = await Promise.race([waitForPong(port, START_TIMEOUT_MS), exited.then(() => false)]);
      if (up) return;
      child.kill('SIGKILL');
      await exited;
      // The port was taken between asking and binding (or is still in TIME_WAIT on restart).
      if (attempt >= 5) throw new Error(`redis-server did not start on port ${port}: ${logTail(dir)}`);
      if (samePort) await delay(200);
    }
  }

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    current.kill(signal);
    if (signal !== 'SIGKILL') current.kill('SIGCONT'); // a paused server must wake to shut down
    const timer = setTimeout(() => current.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  try {
    await launch(false);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    get url() {
      return `redis://${options.password ? `:${encodeURIComponent(options.password)}@` : ''}127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    async restart() {
      await terminate('SIGTERM');
      await launch(true);
    },
    kill: () => terminate('SIGKILL'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async stop() {
      await terminate('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


/** Polls with a raw PING until +PONG, or NOAUTH from a server with a password (true), or the time is up (false). */
export async function waitForPong(port: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await pingOnce(port)) return true;
    await delay(20);
  }
  return false;
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(/^(\+PONG|-NOAUTH)/.test(data.toString())));
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8').split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}
