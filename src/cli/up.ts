/**
 * `calcmesh up`: every component as its own child process, supervised. Output lines are
 * prefixed with the component's name; a child that exits on its own is restarted with
 * exponential backoff (and the log says so); a child that fails at start-up the same way
 * (exit code EXIT_STARTUP_FAILURE, same message) several times in a row is not restarted again:
 * everything stops and `up` exits saying why. SIGINT or SIGTERM stops every child and waits for
 * it. Each child also holds an IPC channel to this process and stops itself when the channel
 * closes, so even a SIGKILL of the supervisor leaves no orphan.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { prettyFactory } from 'pino-pretty';
import type { Config } from '../shared/config.js';
import { EXIT_STARTUP_FAILURE } from '../shared/lifecycle.js';
import { SERVICE_OPS } from '../shared/operations.js';

export interface Component {
  readonly name: string;
  readonly args: readonly string[];
  /** Added to the supervisor's environment for this child only. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The whole system on one machine: each service listens on the port of its first target in
 * CALC_<OP>_TARGETS (so the gateway and the evaluator find it), on loopback unless
 * CALC_SERVICE_HOST says otherwise.
 */
export function localComponents(config: Config, env: NodeJS.ProcessEnv): Component[] {
  // An operation in CALC_RELAY is served by a foreign service (the original Python one) on its
  // target: calcmesh runs a relay for its queue instead of its own service on that port.
  const relayed = new Set(config.relay);
  return [
    ...SERVICE_OPS.filter((op) => !relayed.has(op)).map((op) => ({
      name: op,
      args: ['service', op],
      env: {
        CALC_SERVICE_PORT: config.targets[op][0]!.slice(config.targets[op][0]!.lastIndexOf(':') + 1),
        CALC_SERVICE_HOST: env.CALC_SERVICE_HOST || '127.0.0.1',
      },
    })),
    ...config.relay.map((op) => ({ name: `relay-${op}`, args: ['relay', op] })),
    { name: 'gateway', args: ['gateway'] },
  ];
}

export interface SupervisorOptions {
  /** The CLI entry point the children run. */
  readonly entry: string;
  readonly components: readonly Component[];
  readonly env: NodeJS.ProcessEnv;
  readonly out?: (line: string) => void;
  readonly stopTimeoutMs?: number;
  readonly maxBackoffMs?: number;
  /** Print the children's JSON log lines for a person (on a terminal); JSON as it came otherwise. */
  readonly pretty?: boolean;
  /** Identical start-up failures in a row after which a child is given up on (default 3). */
  readonly maxStartFailures?: number;
  /** Called once when a child was given up on; every child has been asked to stop by then. */
  readonly onGiveUp?: (message: string) => void;
}

/** pino-pretty's formatter, one line at a time; anything that is not a JSON log line passes as is. */
function prettyLines(): (line: string) => string {
  const format = prettyFactory({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,component', singleLine: true });
  return (line) => {
    if (!line.startsWith('{')) return line;
    try {
      return format(JSON.parse(line)).trimEnd();
    } catch {
      return line;
    }
  };
}

const INITIAL_BACKOFF_MS = 250;
/** A child that ran this long is healthy again: its next crash restarts it quickly. */
const STABLE_AFTER_MS = 10_000;

export function supervise(options: SupervisorOptions): { stop(): Promise<void>; restart(name: string, signal?: NodeJS.Signals): string } {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const readable = options.pretty ? prettyLines() : (line: string) => line;
  const width = Math.max(...options.components.map((c) => c.name.length));
  const say = (name: string, line: string) => out(`${name.padEnd(width)} | ${line}`);
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const maxStartFailures = options.maxStartFailures ?? 3;
  let stopping = false;

  const supervised = options.components.map((component) => {
    const state = {
      child: undefined as ChildProcess | undefined,
      backoffMs: INITIAL_BACKOFF_MS,
      timer: undefined as NodeJS.Timeout | undefined,
      /** The last start-up failure's message and how many times in a row it came. */
      failure: { message: '', count: 0 },
      /** Set by restart(): the coming exit was asked for and is followed by an immediate start. */
      restarting: false,
    };
    const start = () => {
      state.timer = undefined;
      const startedAt = Date.now();
      const child = spawn(process.execPath, [options.entry, ...component.args], {
        env: { ...options.env, ...component.env },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      state.child = child;
      let lastError = '';
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => {
          if (line.startsWith('calcmesh: ')) lastError = line.slice('calcmesh: '.length);
          say(component.name, readable(line));
        });
      }
      child.on('exit', (code, signal) => {
        state.child = undefined;
        if (stopping) return;
        if (state.restarting) {
          state.restarting = false;
          say('up', `${component.name} exited (${signal ?? `code ${code}`}) as asked; starting it again`);
          start();
          return;
        }
        if (code === EXIT_STARTUP_FAILURE) {
          const message = lastError || `exit code ${code}`;
          state.failure = message === state.failure.message ? { message, count: state.failure.count + 1 } : { message, count: 1 };
          if (state.failure.count >= maxStartFailures) {
            const why = `${component.name} failed to start ${state.failure.count} times: ${message}; not restarting it, stopping everything`;
            say('up', why);
            void supervisor.stop().then(() => options.onGiveUp?.(why));
            return;
          }
        } else {
          state.failure = { message: '', count: 0 };
        }
        if (Date.now() - startedAt > STABLE_AFTER_MS) state.backoffMs = INITIAL_BACKOFF_MS;
        say('up', `${component.name} exited (${signal ?? `code ${code}`}); restarting in ${state.backoffMs} ms`);
        state.timer = setTimeout(start, state.backoffMs);
        state.backoffMs = Math.min(state.backoffMs * 2, maxBackoffMs);
      });
    };
    start();
    return { component, state, start };
  });

  const supervisor = {
    /** Stops one child with `signal` (SIGTERM: gracefully) and starts it again at once. */
    restart(name: string, signal: NodeJS.Signals = 'SIGTERM'): string {
      const entry = supervised.find((s) => s.component.name === name);
      if (!entry) throw new Error(`no component ${JSON.stringify(name)}; expected one of ${supervised.map((s) => s.component.name).join(', ')}`);
      if (stopping) throw new Error('calcmesh up is stopping');
      const { child } = entry.state;
      if (!child) {
        clearTimeout(entry.state.timer);
        entry.start();
        return `${name} was not running; started it`;
      }
      entry.state.restarting = true;
      child.kill(signal);
      return `${name} (pid ${child.pid}) sent ${signal}; it is started again when it exits`;
    },
    async stop() {
      stopping = true;
      const exits = supervised.map(({ component, state }) => {
        clearTimeout(state.timer);
        const child = state.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => {
            say('up', `${component.name} did not stop in time; killing it`);
            child.kill('SIGKILL');
          }, options.stopTimeoutMs ?? 10_000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        });
      });
      await Promise.all(exits);
    },
  };
  return supervisor;
}
