/** `GET /v1/results?status=&operation=&limit=&cursor=` (#15): this client's tickets, newest first, paged. */
import type { FastifyInstance } from 'fastify';
import { SERVICE_OPS, type ServiceOp } from '../../shared/operations.js';
import type { DurableQueue, TicketStatus } from '../../queue/types.js';
import { errorResponseSchema } from '../errors.js';
import { read, ticketSchema, view } from './results.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

interface Query {
  status?: TicketStatus;
  operation?: ServiceOp;
  limit?: string;
  cursor?: string;
}

export function historyRoutes(app: FastifyInstance, queue: DurableQueue): void {
  app.get<{ Querystring: Query }>('/v1/results', {
    schema: {
      tags: ['results'],
      summary: 'This client\'s tickets, newest first, paged (history within the result TTL)',
      description:
        'Stored tickets of this client: queued requests, and direct answers given with an Idempotency-Key. Pass the ' +
        '`nextCursor` of a page as `cursor` for the next one; it is absent on the last page. A filtered page may hold ' +
        'fewer than `limit` tickets and still have a next one. Reading the history never delivers anything.',
      querystring: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['queued', 'done', 'failed'] },
          operation: { type: 'string', enum: [...SERVICE_OPS] },
          limit: { type: 'string', pattern: '^[1-9]\\d{0,3}$', description: `tickets per page, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT})` },
          cursor: { type: 'string', maxLength: 400, description: 'the nextCursor of the previous page' },
        },
      },
      response: {
        200: {
          description: 'one page of tickets',
          type: 'object',
          properties: { results: { type: 'array', items: ticketSchema }, nextCursor: { type: 'string' } },
        },
        '4xx': { ...errorResponseSchema, description: 'INVALID_ARGUMENT (400): a bad filter, limit or cursor' },
        '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable' },
      },
    },
  }, async (request) => {
    const { status, operation, cursor } = request.query;
    const limit = Math.min(Number(request.query.limit ?? DEFAULT_LIMIT), MAX_LIMIT);
    const page = await read(() => queue.listTickets(request.client, { status, operation, limit, cursor }));
    return { results: page.tickets.map(view), ...(page.nextCursor && { nextCursor: page.nextCursor }) };
  });
}
