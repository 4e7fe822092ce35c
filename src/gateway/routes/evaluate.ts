import type { FastifyInstance } from 'fastify';
import { parseExpression } from '../../services/evaluator/index.js';
import { callerOf } from '../caller.js';
import type { createDispatcher } from '../dispatch.js';
import { errorResponseSchema } from '../errors.js';
import { queuedSchema, sendAnswer } from './operations.js';

/** `POST /v1/evaluate {"expression": "(6+7)*3 - 8/2"}`: parsed here so that a malformed one is never sent or queued. */
export function evaluateRoutes(app: FastifyInstance, dispatcher: ReturnType<typeof createDispatcher>): void {
  app.post<{ Body: { expression: string } }>('/v1/evaluate', {
    schema: {
      body: {
        type: 'object',
        required: ['expression'],
        properties: { expression: { type: 'string', maxLength: 4096, examples: ['(6+7)*3 - 8/2'] } },
      },
      response: {
        200: { type: 'object', properties: { expression: { type: 'string' }, result: { type: 'number' }, id: { type: 'string' } } },
        202: queuedSchema,
        '4xx': errorResponseSchema,
        '5xx': errorResponseSchema,
      },
    },
  }, async (request, reply) => {
    const { expression } = request.body;
    parseExpression(expression);
    const answer = await dispatcher.dispatch({ operation: 'evaluate', expression }, callerOf(request));
    return sendAnswer(reply, answer, { expression });
  });
}
