import { styleText } from 'node:util';
/**
 * The client commands: `call`, `eval`, `results`, `status`. Exit codes: 0 done, 2 queued
 * (a ticket was issued), 1 error. `--json` prints the gateway's answer as it came.
 */
export interface ClientOptions {
  readonly gateway: string;
  readonly json: boolean;
  readonly apiKey?: string | undefined;
  readonly wait?: number | undefined;
}

export const EXIT = { done: 0, error: 1, queued: 2 } as const;

/** Colour only for a person at a terminal, and never with NO_COLOR set. */
/** Set once by the CLI's entry from its settings (NO_COLOR) and whether stdout is a terminal. */
export const output = { colour: false };
const paint = (text: string, colour: 'green' | 'red' | 'yellow' | 'dim') => (output.colour ? styleText(colour, text) : text);
const healthColour = (value: string) =>
  value === 'SERVING' || value === 'closed' ? paint(value, 'green') : value === 'half-open' ? paint(value, 'yellow') : paint(value, 'red');

type Out = (line: string) => void;

export async function request(options: ClientOptions, path: string, init: RequestInit = {}) {
  const headers: Record<string, string> = { accept: 'application/json', ...(init.headers as Record<string, string>) };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const url = new URL(path, options.gateway);
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(((options.wait ?? 0) + 10) * 1000) });
  } catch (error) {
    throw new Error(`cannot reach the gateway at ${options.gateway}: ${(error as Error).message}`);
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, any>;
  return { status: response.status, body };
}

/** Prints an answer to an operation and returns the exit code it means. */
async function answer(options: ClientOptions, out: Out, reply: { status: number; body: Record<string, any> }): Promise<number> {
  let { status, body } = reply;
  if (status === 202 && options.wait) {
    ({ status, body } = await request(options, `/v1/results/${encodeURIComponent(body.id)}?wait=${options.wait}`));
  }
  if (options.json) out(JSON.stringify(body));
  if (status >= 400) {
    if (!options.json) out(`${paint('error', 'red')} ${status} ${body.error?.code ?? ''}: ${body.error?.message ?? JSON.stringify(body)}`);
    return EXIT.error;
  }
  const state = body.status === 'queued' ? 'queued' : body.status === 'failed' ? 'failed' : 'done';
  if (!options.json) {
    if (state === 'queued') out(`${paint('queued', 'yellow')}   ticket ${body.id} (the service is unavailable; fetch later with: calcmesh results)`);
    else if (state === 'failed') out(`${paint('failed', 'red')}   ${body.error?.code}: ${body.error?.message}   (ticket ${body.id})`);
    else out(`${body.result}`);
  }
  return state === 'queued' ? EXIT.queued : state === 'failed' ? EXIT.error : EXIT.done;
}

export async function callCommand(options: ClientOptions, out: Out, op: string, a: string, b: string) {
  const path = `/${encodeURIComponent(op)}/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  return answer(options, out, await request(options, path));
}

export async function evalCommand(options: ClientOptions, out: Out, expression: string) {
  return answer(options, out, await request(options, '/v1/evaluate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ expression }),
  }));
}

export async function resultsCommand(options: ClientOptions, out: Out) {
  const until = Date.now() + (options.wait ?? 0) * 1000;
  let reply = await request(options, '/pending_results');
  while (reply.status === 200 && reply.body.results?.length === 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    reply = await request(options, '/pending_results');
  }
  if (options.json) out(JSON.stringify(reply.body));
  if (reply.status !== 200) {
    if (!options.json) out(`error ${reply.status} ${reply.body.error?.code ?? ''}: ${reply.body.error?.message ?? ''}`);
    return EXIT.error;
  }
  const rows = (reply.body.results as Record<string, any>[]).map((t) => [
    t.id,
    t.operation,
    t.expression ?? `${t.num1} ${t.num2}`,
    t.status,
    t.status === 'done' ? String(t.result) : `${t.error?.code}: ${t.error?.message}`,
  ]);
  if (!options.json) out(rows.length === 0 ? 'no completed results waiting' : table(['ticket', 'operation', 'input', 'status', 'result'], rows));
  return EXIT.done;
}

export async function statusCommand(options: ClientOptions, out: Out) {
  const reply = await request(options, '/v1/status');
  if (options.json) out(JSON.stringify(reply.body));
  if (reply.status !== 200) {
    if (!options.json) out(`error ${reply.status}: ${JSON.stringify(reply.body)}`);
    return EXIT.error;
  }
  if (!options.json) {
    const body = reply.body;
    out(`calcmesh ${body.version}, up ${body.uptimeS} s, queue ${body.queue.backend} ${body.queue.ok ? 'ok' : 'UNAVAILABLE'}`);
    const rows: string[][] = [];
    for (const [op, service] of Object.entries<Record<string, any>>(body.services)) {
      for (const replica of service.replicas) {
        rows.push([op, replica.target, replica.health, replica.breaker ?? '-', String(service.queue?.depth ?? '?'), `${service.queue?.oldestAgeMs ?? '?'} ms`]);
      }
    }
    out(table(['service', 'replica', 'health', 'circuit', 'queued', 'oldest'], rows, [2, 3]));
  }
  return EXIT.done;
}

/** Aligned columns; the cells of `coloured` columns are painted after padding, so colour never skews the widths. */
export function table(header: string[], rows: string[][], coloured: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], paintCells: boolean) =>
    cells.map((c, i) => {
      const padded = c.padEnd(widths[i]!);
      return paintCells && coloured.includes(i) ? padded.replace(c, healthColour(c)) : padded;
    }).join('  ').trimEnd();
  return [line(header, false), ...rows.map((r) => line(r, true))].join('\n');
}
