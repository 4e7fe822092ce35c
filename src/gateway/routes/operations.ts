import type { FastifyInstance, FastifyReply } from 'fastify';
import { invalidArgument } from '../../shared/errors.js';
import { ARITHMETIC_OPS, isArithmeticOp } from '../../shared/operations.js';
import { parseOperand } from '../../domain/index.js';
import { callerOf } from '../caller.js';
import type { Answer, createDispatcher, Job } from '../dispatch.js';
import { errorResponseSchema } from '../errors.js';
import type { CallbackReader } from '../webhooks.js';

type Dispatcher = ReturnType<typeof createDispatcher>;

export const queuedSchema = {
  description: 'the service is unavailable; the request is stored durably (Location: /v1/results/{id})',
  type: 'object',
  properties: { id: { type: 'string' }, status: { type: 'string', enum: ['queued'] }, message: { type: 'string' } },
} as const;

/** `GET /{op}/{a}/{b}`: the original system's routes, plus divide. */
export function operationRoutes(app: FastifyInstance, dispatcher: Dispatcher, callbackOf: CallbackReader = () => undefined): void {
  app.get<{ Params: { op: string; a: string; b: string } }>('/:op/:a/:b', {
    // HEAD would run this handler (and its side effects): it is answered 405 instead (methods.ts).
    exposeHeadRoute: false,
    schema: {
      tags: ['compute'],
      summary: 'Compute one operation (the original routes, plus divide)',
      description: 'Forwards to the operation\'s gRPC service. When the service is unavailable the request is stored durably and answered 202 with a ticket; argument and domain errors are answered at once and never queued. Send `Idempotency-Key` to make a retry safe, and `Callback-Url` to have the result of queued work POSTed to you (a webhook).',
      params: {
        type: 'object',
        properties: {
          op: { type: 'string', enum: [...ARITHMETIC_OPS] },
          a: { type: 'string', examples: ['6'] },
          b: { type: 'string', examples: ['7'] },
        },
      },
      response: {
        200: {
          description: 'the service answered',
          type: 'object',
          properties: { operation: { type: 'string' }, result: { type: 'number' }, id: { type: 'string' } },
          examples: [{ operation: 'add', result: 13, id: '9f4e469a-b955-4cac-b069-e946017a9e38' }],
        },
        202: queuedSchema,
        '4xx': { ...errorResponseSchema, description: 'INVALID_ARGUMENT (400), DOMAIN_ERROR (422), UNAUTHENTICATED (401), CONFLICT (409), RATE_LIMITED (429)' },
        '5xx': { ...errorResponseSchema, description: 'UNAVAILABLE (503): the service and the queue are both unavailable; UPSTREAM_ERROR (502)' },
      },
    },
    // The op is validated by hand so that an unknown one is INVALID_ARGUMENT, as the contract says.
    validatorCompiler: () => () => true,
  }, async (request, reply) => {
    const { op, a, b } = request.params;
    if (!isArithmeticOp(op)) throw invalidArgument(`unknown operation ${JSON.stringify(op.slice(0, 40))}; expected one of ${ARITHMETIC_OPS.join(', ')}`);
    const job: Job = { operation: op, num1: parseOperand(a, 'a'), num2: parseOperand(b, 'b') };
    const answer = await dispatcher.dispatch(job, { ...callerOf(request), callback: callbackOf(request.headers) });
    return sendAnswer(reply, answer, { operation: op });
  });
}

export function sendAnswer(reply: FastifyReply, answer: Answer, echo: Record<string, unknown>) {
  if (answer.kind === 'done') return reply.send({ ...echo, result: answer.result, id: answer.id });
  return reply
    .code(202)
    .header('location', `/v1/results/${answer.id}`)
    .send({ id: answer.id, status: 'queued', message: `the service is unavailable; the request is stored and will be computed when it returns: GET /v1/results/${answer.id}` });
}
