import type { FastifyInstance } from 'fastify';
import { CalcError, notFound } from '../../shared/errors.js';
import type { DurableQueue, Ticket } from '../../queue/types.js';
import { errorResponseSchema } from '../errors.js';

const MAX_WAIT_S = 30;
const PENDING_BATCH = 1000;

export const ticketSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'done', 'failed'] },
    operation: { type: 'string' },
    num1: { type: 'number' },
    num2: { type: 'number' },
    expression: { type: 'string' },
    result: { type: 'number' },
    error: errorResponseSchema.properties.error,
    createdAt: { type: 'string' },
    completedAt: { type: 'string' },
  },
} as const;

/** `GET /v1/results/{id}` (with `?wait=` long-poll) and the original `GET /pending_results`. */
export function resultRoutes(app: FastifyInstance, queue: DurableQueue): void {
  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>('/v1/results/:id', {
    schema: {
      tags: ['results'],
      summary: 'One ticket: queued, done or failed',
      params: { type: 'object', properties: { id: { type: 'string' } } },
      querystring: {
        type: 'object',
        properties: { wait: { type: 'string', pattern: '^\\d{1,2}(\\.\\d+)?$', description: `seconds to hold the request until the ticket completes (at most ${MAX_WAIT_S})` } },
      },
      response: {
        200: { ...ticketSchema, description: 'the ticket' },
        '4xx': { ...errorResponseSchema, description: 'NOT_FOUND (404): unknown, expired or another client\'s ticket' },
        '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable' },
      },
    },
  }, async (request) => {
    const { id } = request.params;
    if (id.length > 64) throw notFound('no such ticket for this client');
    const until = Date.now() + Math.min(Number(request.query.wait ?? 0), MAX_WAIT_S) * 1000;
    for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
      const ticket = await read(() => queue.getTicket(request.client, id));
      if (!ticket) throw notFound(`no ticket ${JSON.stringify(id)} for this client`);
      if (ticket.status !== 'queued' || Date.now() + pause > until) return view(ticket);
      await new Promise((r) => setTimeout(r, pause));
    }
  });

  app.get('/pending_results', {
    // HEAD would run this handler (and its side effects): it is answered 405 instead (methods.ts).
    exposeHeadRoute: false,
    schema: {
      tags: ['results'],
      summary: 'This client\'s completed queued results, each delivered once (the original route)',
      response: {
        200: { description: 'completed tickets not fetched before; fetching delivers them', type: 'object', properties: { results: { type: 'array', items: ticketSchema } } },
        '4xx': errorResponseSchema,
        '5xx': errorResponseSchema,
      },
    },
  }, async (request) => {
    // Only a GET delivers: Fastify also runs this handler for HEAD, which must stay a read.
    if (request.method !== 'GET') return { results: [] };
    return { results: (await read(() => queue.takeCompleted(request.client, PENDING_BATCH))).map(view) };
  });
}

export async function read<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof CalcError) throw error;
    throw new CalcError('UNAVAILABLE', 'the queue is unavailable; retry later');
  }
}

/** The public shape of a ticket: the contract's fields, times as ISO strings, the client (and a callback) left out. */
export function view(ticket: Ticket) {
  const { client: _client, callback: _callback, createdAt, completedAt, ...rest } = ticket;
  return {
    ...rest,
    createdAt: new Date(createdAt).toISOString(),
    ...(completedAt === undefined ? {} : { completedAt: new Date(completedAt).toISOString() }),
  };
}
