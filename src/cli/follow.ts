/**
 * `calcmesh results --list` (the history, page by page) and `calcmesh results --follow` (the
 * event stream, printed as results arrive; it reconnects with Last-Event-ID when the stream
 * breaks, so that nothing is skipped, until interrupted).
 */
import { EXIT, request, table, type ClientOptions } from './client.js';

type Out = (line: string) => void;

export interface ListOptions {
  readonly status?: string | undefined;
  readonly operation?: string | undefined;
  readonly limit?: number | undefined;
}

const row = (t: Record<string, any>) => [
  t.id,
  t.operation,
  t.expression ?? `${t.num1} ${t.num2}`,
  t.status,
  t.status === 'done' ? String(t.result) : t.status === 'failed' ? `${t.error?.code}: ${t.error?.message}` : '',
];
const HEADER = ['ticket', 'operation', 'input', 'status', 'result'];

/** Every page of the history (up to `limit` tickets in all), newest first. */
export async function listCommand(options: ClientOptions, out: Out, list: ListOptions): Promise<number> {
  const wanted = list.limit ?? 100;
  const tickets: Record<string, any>[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: String(Math.min(wanted - tickets.length, 1000)) });
    if (list.status) query.set('status', list.status);
    if (list.operation) query.set('operation', list.operation);
    if (cursor) query.set('cursor', cursor);
    const reply = await request(options, `/v1/results?${query}`);
    if (reply.status !== 200) {
      out(options.json ? JSON.stringify(reply.body) : `error ${reply.status} ${reply.body.error?.code ?? ''}: ${reply.body.error?.message ?? ''}`);
      return EXIT.error;
    }
    tickets.push(...(reply.body.results as Record<string, any>[]));
    cursor = reply.body.nextCursor;
  } while (cursor && tickets.length < wanted);
  if (options.json) out(JSON.stringify({ results: tickets }));
  else out(tickets.length === 0 ? 'no tickets' : table(HEADER, tickets.map(row)));
  return EXIT.done;
}

/** Prints each result pushed on GET /v1/events, one line each (JSON lines with --json). */
export async function followCommand(options: ClientOptions, out: Out, signal: AbortSignal): Promise<number> {
  let lastId: string | undefined;
  let failures = 0;
  while (!signal.aborted) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (lastId) headers['last-event-id'] = lastId;
    try {
      const response = await fetch(new URL('/v1/events', options.gateway), { headers, signal });
      if (!response.ok || !response.body) {
        const body = (await response.json().catch(() => ({}))) as Record<string, any>;
        out(`error ${response.status} ${body.error?.code ?? ''}: ${body.error?.message ?? ''}`);
        // A refusal (bad key, bad id) does not heal by retrying; a 503 may.
        if (response.status < 500) return EXIT.error;
      } else {
        failures = 0;
        for await (const event of parseEvents(response.body)) {
          if (event.event !== 'result') continue;
          lastId = event.id ?? lastId;
          const ticket = JSON.parse(event.data) as Record<string, any>;
          out(options.json ? event.data : row(ticket).join('  '));
        }
      }
    } catch (error) {
      if (signal.aborted) break;
      if (failures === 0) process.stderr.write(`calcmesh: the event stream broke (${(error as Error).message}); reconnecting\n`);
    }
    failures += 1;
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** Math.min(failures, 5), 10_000)));
  }
  return EXIT.done;
}

interface ServerEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** The text/event-stream format (blocks separated by a blank line; `field: value` lines; `:` comments). */
async function* parseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: ServerEvent = { event: 'message', id: undefined, data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const at = line.indexOf(':');
        const field = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
        if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) yield { ...event, data: data.join('\n') };
    }
  }
}
