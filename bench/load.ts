/**
 * One load run, bounded in time: `wrk -t1 -c<n> -d<s>s --latency` when wrk is installed,
 * autocannon (in this process) otherwise. Both give the same figures: requests per second,
 * p50 and p99 latency, responses that were not 2xx, and socket errors.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './procs.js';

export interface LoadSpec {
  readonly url: string;
  readonly durationS: number;
  readonly connections: number;
  /** A JSON body makes it a POST with content-type application/json. */
  readonly jsonBody?: string;
}

export interface LoadResult {
  readonly tool: 'wrk' | 'autocannon';
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses with a status outside 2xx (wrk counts 3xx with them). */
  readonly non2xx: number;
  /** Connect, read, write errors and timeouts. */
  readonly errors: number;
}

const POST_SCRIPT = fileURLToPath(new URL('./post-json.lua', import.meta.url));

let wrkAvailable: boolean | undefined;
/** Use autocannon even where wrk is installed (`--autocannon`). */
export function preferAutocannon(): void {
  wrkAvailable = false;
}
export function loadTool(): 'wrk' | 'autocannon' {
  wrkAvailable ??= !spawnSync('wrk', ['-v']).error;
  return wrkAvailable ? 'wrk' : 'autocannon';
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return loadTool() === 'wrk' ? runWrk(spec) : runAutocannon(spec);
}

async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${Math.max(1, Math.round(spec.durationS))}s`, '--latency', '--timeout', '10s'];
  if (spec.jsonBody !== undefined) args.push('-s', POST_SCRIPT);
  args.push(spec.url);
  const child = spawn('wrk', args, { env: { ...process.env, WRK_BODY: spec.jsonBody ?? '' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const unregister = onCleanup(kill);
  // wrk stops itself after -d; this bounds a wrk that does not (a server that never answers).
  const guard = setTimeout(kill, (spec.durationS + 20) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(guard);
  unregister();
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${output}`);
  return { tool: 'wrk', ...parseWrk(output) };
}

/** Parses the text wrk prints with --latency; throws when a figure the table needs is missing. */
export function parseWrk(text: string): Omit<LoadResult, 'tool'> {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const total = /^\s*(\d+) requests in /m.exec(text);
  const p50 = /^\s+50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text);
  const p99 = /^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text);
  if (!rps || !total || !p50 || !p99) throw new Error(`unexpected wrk output:\n${text}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    rps: Number(rps[1]),
    p50Ms: toMs(Number(p50[1]), p50[2]!),
    p99Ms: toMs(Number(p99[1]), p99[2]!),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const toMs = (value: number, unit: string) => value * UNIT_MS[unit]!;

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const name = 'autocannon'; // no type declarations; loaded only when wrk is missing
  const { default: autocannon } = (await import(name)) as { default: (options: object) => Promise<any> };
  const post = spec.jsonBody !== undefined;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 10,
    ...(post ? { method: 'POST', body: spec.jsonBody, headers: { 'content-type': 'application/json' } } : {}),
  });
  return {
    tool: 'autocannon',
    requests: result.requests.total,
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}
