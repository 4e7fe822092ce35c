import type { FastifyInstance } from 'fastify';
import { parseExpression } from '../../domain/index.js';
import { callerOf } from '../caller.js';
import type { createDispatcher } from '../dispatch.js';
import { errorResponseSchema } from '../errors.js';
import type { CallbackReader } from '../webhooks.js';
import { compileBodyValidator } from '../validation.js';
import { queuedSchema, sendAnswer } from './operations.js';

export const EVALUATE_PATH = '/v1/evaluate';

const bodySchema = {
  type: 'object',
  required: ['expression'],
  properties: {
    expression: { type: 'string', maxLength: 4096, examples: ['(6+7)*3 - 8/2'] },
    callback: { type: 'string', maxLength: 2048, description: 'a webhook URL, as the Callback-Url header (which wins)' },
  },
} as const;

/** The body's validator, Fastify's own: the route and the hot route (hot-route.ts) share it. */
export const validateEvaluateBody = compileBodyValidator(bodySchema, EVALUATE_PATH);

export interface EvaluateBody {
  readonly expression: string;
  readonly callback?: string;
}

/** The response to a done evaluation, in the 200 schema's key order. */
export const evaluatedBody = (expression: string, result: number, id: string) => ({ expression, result, id });

/** `POST /v1/evaluate {"expression": "(6+7)*3 - 8/2"}`: parsed here so that a malformed one is never sent or queued. */
export function evaluateRoutes(app: FastifyInstance, dispatcher: ReturnType<typeof createDispatcher>, callbackOf: CallbackReader = () => undefined): void {
  app.post<{ Body: EvaluateBody }>(EVALUATE_PATH, {
    schema: {
      tags: ['compute'],
      summary: 'Compute a whole expression through the arithmetic services',
      description: 'Numbers, + - * /, unary minus, parentheses; at most 4,096 characters and nesting depth 64. Parsed here first: a malformed expression is a 400 naming the position, never sent or queued.',
      body: bodySchema,
      response: {
        200: { description: 'the evaluator answered', type: 'object', properties: { expression: { type: 'string' }, result: { type: 'number' }, id: { type: 'string' } } },
        202: queuedSchema,
        '4xx': { ...errorResponseSchema, description: 'INVALID_ARGUMENT (400), DOMAIN_ERROR (422), PAYLOAD_TOO_LARGE (413), UNAUTHENTICATED (401), CONFLICT (409), RATE_LIMITED (429)' },
        '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the evaluator and the queue are both unavailable' },
      },
    },
    validatorCompiler: () => validateEvaluateBody,
  }, async (request, reply) => {
    const { expression } = request.body;
    parseExpression(expression);
    const callback = callbackOf(request.headers, request.body.callback);
    const answer = await dispatcher.dispatch({ operation: 'evaluate', expression }, { ...callerOf(request), callback });
    return sendAnswer(reply, answer, { expression });
  });
}
