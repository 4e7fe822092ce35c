/**
 * Dead letters for operators (#15): `GET /v1/admin/dead-letters`, `POST …/{id}/replay`,
 * `DELETE …/{id}`. Only operator keys (CALC_ADMIN_KEYS, `Authorization: Bearer`) reach them: a
 * client's key is 403, no key or an unknown one 401. caller.ts matches every key (and limits
 * wrong guesses per address); these routes only ask whether it was an operator's.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CalcError, notFound } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { SERVICE_OPS, type ServiceOp } from '../../shared/operations.js';
import type { DeadLetter, DurableQueue } from '../../queue/types.js';
import { ANONYMOUS } from '../caller.js';
import { errorResponseSchema } from '../errors.js';
import { read } from './results.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

export interface AdminDeps {
  readonly queue: DurableQueue;
  /** Operator key -> name. */
  readonly adminKeys: ReadonlyMap<string, string>;
  readonly logger: Logger;
}

const deadLetterSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'its ticket id' },
    operation: { type: 'string' },
    client: { type: 'string' },
    deliveries: { type: 'integer' },
    reason: { type: 'string' },
    deadAt: { type: 'string' },
    enqueuedAt: { type: 'string' },
    num1: { type: 'number' },
    num2: { type: 'number' },
    expression: { type: 'string' },
  },
} as const;

const refusals = { ...errorResponseSchema, description: 'UNAUTHENTICATED (401): no or an unknown key; FORBIDDEN (403): a client key; NOT_FOUND (404): no such dead letter' };

export function adminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const configured = deps.adminKeys.size > 0;

  /**
   * Why this caller may not reach an operator route, or undefined. caller.ts has already matched
   * the presented key in constant time (and counted a wrong one against its address).
   */
  function refusal(request: FastifyRequest): CalcError | undefined {
    if (request.operator) return undefined;
    if (!configured) return new CalcError('FORBIDDEN', 'no operator keys are configured on this gateway (CALC_ADMIN_KEYS)');
    if (request.client !== ANONYMOUS) return new CalcError('FORBIDDEN', 'this is a client key; dead letters need an operator key (CALC_ADMIN_KEYS)');
    return new CalcError('UNAUTHENTICATED', 'an operator key is required: Authorization: Bearer <key>');
  }

  const security = [{ bearer: [] }];
  app.register(async (admin) => {
    admin.addHook('preHandler', async (request) => {
      const refused = refusal(request);
      if (refused) throw refused;
    });

    admin.get<{ Querystring: { operation?: ServiceOp; limit?: string } }>('/v1/admin/dead-letters', {
      schema: {
        tags: ['admin'],
        summary: 'Dead letters: tasks given up after CALC_MAX_DELIVERIES, newest first (operator keys only)',
        security,
        querystring: {
          type: 'object',
          properties: {
            operation: { type: 'string', enum: [...SERVICE_OPS] },
            limit: { type: 'string', pattern: '^[1-9]\\d{0,3}$', description: `at most this many, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT})` },
          },
        },
        response: {
          200: { description: 'the dead letters', type: 'object', properties: { deadLetters: { type: 'array', items: deadLetterSchema } } },
          '4xx': refusals,
          '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable' },
        },
      },
    }, async (request) => {
      const ops = request.query.operation ? [request.query.operation] : SERVICE_OPS;
      const limit = Math.min(Number(request.query.limit ?? DEFAULT_LIMIT), MAX_LIMIT);
      return { deadLetters: (await read(() => deps.queue.deadLetters(ops, limit))).map(viewDeadLetter) };
    });

    admin.post<{ Params: { id: string } }>('/v1/admin/dead-letters/:id/replay', {
      schema: {
        tags: ['admin'],
        summary: 'Put a dead letter back into its queue under the same ticket id; its owner gets the result like any other',
        security,
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 128 } } },
        response: {
          200: { description: 'queued again', type: 'object', properties: { id: { type: 'string' }, status: { type: 'string', enum: ['queued'] } } },
          '4xx': refusals,
          '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable' },
        },
      },
    }, async (request) => {
      const { id } = request.params;
      if (!(await read(() => deps.queue.replayDeadLetter(id)))) throw notFound(`no dead letter ${JSON.stringify(id)}`);
      deps.logger.info({ id, operator: request.client }, 'dead letter replayed');
      return { id, status: 'queued' };
    });

    admin.delete<{ Params: { id: string } }>('/v1/admin/dead-letters/:id', {
      schema: {
        tags: ['admin'],
        summary: 'Delete a dead letter (its ticket stays failed)',
        security,
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 128 } } },
        response: {
          204: { description: 'deleted', type: 'null' },
          '4xx': refusals,
          '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the queue is unavailable' },
        },
      },
    }, async (request, reply) => {
      const { id } = request.params;
      if (!(await read(() => deps.queue.purgeDeadLetter(id)))) throw notFound(`no dead letter ${JSON.stringify(id)}`);
      deps.logger.info({ id, operator: request.client }, 'dead letter purged');
      return reply.code(204).send();
    });
  });
}

function viewDeadLetter(letter: DeadLetter) {
  const { task } = letter;
  return {
    id: letter.id,
    operation: letter.operation,
    client: letter.client,
    deliveries: letter.deliveries,
    reason: letter.reason,
    deadAt: new Date(letter.deadAt).toISOString(),
    enqueuedAt: new Date(letter.enqueuedAt).toISOString(),
    ...(task.num1 !== undefined && { num1: task.num1 }),
    ...(task.num2 !== undefined && { num2: task.num2 }),
    ...(task.expression !== undefined && { expression: task.expression }),
  };
}
