/**
 * Every error leaves the gateway as the contract's JSON, whatever raised it: our own CalcError,
 * Fastify's parsing and validation errors, or a bug (500 with a generic message; the stack is
 * logged, never sent).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CalcError, ERROR_TABLE, type ErrorBody, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { answerWrongMethod } from './methods.js';

const ARITHMETIC_PATH = /^\/(add|subtract|multiply|divide)\/[^/]*\/[^/]*\/?$/;

export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error: FastifyError | CalcError, request, reply) => {
    const calc = toCalcError(error);
    if (calc.code === 'INTERNAL') logger.error({ err: error, reqId: request.id }, 'unhandled error');
    sendError(reply, calc);
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?', 1)[0] ?? '';
    // `/add//3`: the router finds no route for an empty segment, but the caller meant an operand.
    if (request.method === 'GET' && ARITHMETIC_PATH.test(path)) {
      sendError(reply, new CalcError('INVALID_ARGUMENT', 'an operand is empty; expected /{op}/{a}/{b} with finite decimal numbers'));
      return;
    }
    if (answerWrongMethod(app, request, reply, path)) return;
    sendError(reply, new CalcError('NOT_FOUND', `no route ${request.method} ${truncate(path)}`));
  });
}

/** A message from elsewhere (a service's gRPC details, say) is cut to this many bytes before it is sent. */
const MAX_MESSAGE_BYTES = 1024;

export function sendError(reply: FastifyReply, error: CalcError): FastifyReply {
  if (error.code === 'RATE_LIMITED' && !reply.hasHeader('retry-after')) reply.header('retry-after', '1');
  return reply.code(error.httpStatus).type('application/json; charset=utf-8').send(errorBody(error));
}

/** The contract's JSON for an error, its message cut to MAX_MESSAGE_BYTES (Fastify's routes and the hot route). */
export function errorBody(error: CalcError): ErrorBody {
  const body = error.toJSON();
  body.error.message = truncateBytes(body.error.message, MAX_MESSAGE_BYTES);
  return body;
}

/** At most `max` UTF-8 bytes, ending in `…` when cut, never splitting a character. */
function truncateBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  const ellipsis = '…';
  let cut = Buffer.from(text).subarray(0, max - Buffer.byteLength(ellipsis)).toString();
  // A character split by the cut decodes as U+FFFD: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut + ellipsis;
}

export function toCalcError(error: FastifyError | CalcError | Error): CalcError {
  if (error instanceof CalcError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return new CalcError('INVALID_ARGUMENT', fastifyError.message);
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CalcError('PAYLOAD_TOO_LARGE', 'the request body is over 16 KiB');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CalcError('INVALID_ARGUMENT', 'the body must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CalcError('INVALID_ARGUMENT', 'the JSON body is empty');
    case 'FST_ERR_BAD_URL':
      return new CalcError('INVALID_ARGUMENT', 'the URL is not validly percent-encoded');
  }
  const status = fastifyError.statusCode ?? 500;
  if (status === 429) return new CalcError('RATE_LIMITED', 'too many requests; slow down');
  if (status === 413) return new CalcError('PAYLOAD_TOO_LARGE', 'the request is too large');
  if (status === 404) return new CalcError('NOT_FOUND', fastifyError.message);
  if (status >= 400 && status < 500) {
    const message = error instanceof SyntaxError ? `malformed JSON body: ${error.message}` : fastifyError.message;
    return new CalcError('INVALID_ARGUMENT', truncate(message));
  }
  return new CalcError('INTERNAL', 'internal error');
}

export const errorResponseSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: Object.keys(ERROR_TABLE) as ErrorCode[] }, message: { type: 'string' } },
    },
  },
} as const;

const truncate = (s: string) => (s.length > 120 ? `${s.slice(0, 120)}…` : s);
