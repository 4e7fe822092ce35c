/**
 * `GET /v1/events` (#15): this client's completions pushed as Server-Sent Events. A stream moves
 * the client's completed results into its delivery log (the same atomic take as
 * /pending_results: a result goes to one channel only) and sends what the log holds after its
 * cursor. The log lives in the queue, so every gateway serves it, every open stream of the client
 * sees every result, and `Last-Event-ID` resumes on any gateway with nothing lost within the TTL.
 */
import type { FastifyInstance } from 'fastify';
import { CalcError } from '../../shared/errors.js';
import type { DurableQueue, LoggedTicket } from '../../queue/types.js';
import { errorResponseSchema } from '../errors.js';
import { read, view } from './results.js';

export interface EventOptions {
  readonly heartbeatMs: number;
  readonly pollMs: number;
  readonly maxStreams: number;
}

/** Results moved and sent per round; a backlog is sent in rounds of this size without pausing. */
const BATCH = 100;
/** What an EventSource waits before reconnecting after the stream broke. */
const RETRY_MS = 2000;

export function eventRoutes(app: FastifyInstance, queue: DurableQueue, options: EventOptions): void {
  const open = new Set<AbortController>();
  // Open streams never end by themselves: closing the gateway ends them, or close() would wait forever.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.abort();
  });

  app.get('/v1/events', {
    schema: {
      tags: ['results'],
      summary: 'This client\'s completed queued results, pushed (Server-Sent Events)',
      description:
        '`text/event-stream`: each completion of a queued request of this client as `event: result`, `id: <cursor>`, ' +
        '`data: <ticket JSON>`, and a `: heartbeat` comment line when idle. Send `Last-Event-ID` (EventSource does on ' +
        'reconnect) to resume after that event, on any gateway, with nothing lost within the result TTL. A result sent ' +
        'here is not returned by `/pending_results` (each is delivered once, through whichever channel takes it first); ' +
        'every open stream of the client sees it.',
      headers: { type: 'object', properties: { 'last-event-id': { type: 'string', description: 'resume after this event id' } } },
      response: {
        200: { description: 'the event stream (text/event-stream)', type: 'string' },
        '4xx': { ...errorResponseSchema, description: 'INVALID_ARGUMENT (400): a Last-Event-ID this gateway never sent; UNAUTHENTICATED (401)' },
        '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable, or too many streams are open' },
      },
    },
  }, async (request, reply) => {
    if (open.size >= options.maxStreams) throw new CalcError('UNAVAILABLE', 'too many event streams are open on this gateway; retry later or use /pending_results');
    const client = request.client;
    const given = request.headers['last-event-id'];
    let cursor: string = typeof given === 'string' && given.trim() !== '' ? given.trim() : await read(() => queue.logCursor(client));
    // A first read before the stream starts, so that a bad cursor or a queue down is a JSON error.
    await read(() => queue.readLog(client, cursor, 1));
    // HEAD is a read: it must not take anything into the log.
    if (request.method === 'HEAD') return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send();

    const stop = new AbortController();
    open.add(stop);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    const end = () => stop.abort();
    request.raw.on('close', end);
    raw.on('close', end);
    raw.on('error', end);

    /** Writes, and waits while the client reads slowly: a stream never buffers more than one batch. */
    let lastWrite = Date.now();
    async function send(text: string): Promise<void> {
      lastWrite = Date.now();
      if (raw.write(text) || stop.signal.aborted) return;
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => raw.once('drain', () => resolve(true))),
        pause(Math.max(options.heartbeatMs, 1000) * 2, stop.signal).then(() => false),
      ]);
      if (!drained) raw.destroy();
    }

    try {
      await send(`retry: ${RETRY_MS}\n: connected\n\n`);
      while (!stop.signal.aborted) {
        let backlog: LoggedTicket[] = [];
        try {
          await queue.logCompleted(client, BATCH);
          backlog = await queue.readLog(client, cursor, BATCH);
        } catch (error) {
          // The queue is down: keep the stream and try again; nothing is taken that is not logged.
          request.log.debug({ err: (error as Error).message }, 'events: queue unavailable');
        }
        for (const entry of backlog) {
          if (stop.signal.aborted) break;
          await send(`event: result\nid: ${entry.cursor}\ndata: ${JSON.stringify(view(entry.ticket))}\n\n`);
          cursor = entry.cursor;
        }
        if (backlog.length < BATCH) {
          if (Date.now() - lastWrite >= options.heartbeatMs) await send(': heartbeat\n\n');
          await pause(options.pollMs, stop.signal);
        }
      }
    } finally {
      open.delete(stop);
      request.raw.off('close', end);
      if (!raw.destroyed) raw.end();
    }
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
