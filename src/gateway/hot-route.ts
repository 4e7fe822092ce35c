/**
 * The hot routes: `GET /{op}/{a}/{b}` and `POST /v1/evaluate` answered on Node's `request` event
 * before Fastify sees them. Fastify's per-request machinery (request and reply objects, hooks,
 * routing, body parsing, serializer, finish listeners) was ~11 µs of a direct request's ~42 µs
 * of gateway CPU; this path does the same work with the same functions (caller identity,
 * operand and expression parsing, Fastify's own body validator and JSON parser, the dispatcher,
 * the error table, metrics and the access log) and answers byte for byte what the Fastify route
 * answers (test/integration/hot-route.test.ts holds the two to that).
 *
 * Whatever this path does not do is left to Fastify, unchanged: any other method or path, an
 * operand that needs percent-decoding or a URL with a query, a body that is not plain JSON of a
 * declared length within the limit, a request under a trace (its spans are made by Fastify's
 * hooks), a rate limit (Fastify's plugin counts), and every request once the gateway is closing.
 * `inject()` always takes the Fastify route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ArithmeticOp } from '../shared/operations.js';
import { tracingActive } from '../shared/tracing.js';
import { parseExpression, parseOperand } from '../domain/index.js';
import { idempotencyKeyOf, requestIdFrom, type Identify } from './caller.js';
import type { createDispatcher } from './dispatch.js';
import { errorBody, toCalcError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { CallbackReader } from './webhooks.js';
import { EVALUATE_PATH, evaluatedBody, validateEvaluateBody, type EvaluateBody } from './routes/evaluate.js';
import { BODY_LIMIT_BYTES, parseJsonBody, validationError } from './validation.js';

/** The route as Fastify names it (the metrics' `route` label). */
const ROUTE = '/:op/:a/:b';
/** What Fastify's router would match without decoding anything; the rest goes to Fastify. */
const HOT_PATH = /^\/(add|subtract|multiply|divide)\/([^/?#%]{1,100})\/([^/?#%]{1,100})\/?$/;
const JSON_TYPE = 'application/json; charset=utf-8';
/** The JSON a client sends without thinking: `application/json`, perhaps with `charset=utf-8`. */
const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset=utf-8\s*)?$/i;

declare module 'fastify' {
  interface FastifyInstance {
    /** How many requests the hot route answered (0 when it is off): tests and benchmarks read it. */
    hotRouteServed(): number;
  }
}

export interface HotRouteDeps {
  readonly dispatcher: ReturnType<typeof createDispatcher>;
  readonly identify: Identify;
  readonly callbackOf: CallbackReader;
  readonly metrics: Pick<GatewayMetrics, 'observeHttp'>;
  readonly logger: Logger;
}

/**
 * Puts the hot route in place of Fastify's request handler, which it calls for everything else.
 * Fastify adds that handler when it creates the server, so it is the first `request` listener;
 * the others (connections.ts counts requests per socket) stay as they are, after it.
 */
export function installHotRoute(app: FastifyInstance, deps: HotRouteDeps): void {
  const server = app.server;
  const fastify = server.listeners('request')[0] as (request: IncomingMessage, response: ServerResponse) => void;
  let closing = false;
  let served = 0;
  app.decorate('hotRouteServed', () => served);
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  const logRequests = deps.logger.isLevelEnabled('info');

  /** What a route computed: a result body, a queued ticket, or an error (and Retry-After). */
  interface Answer {
    status: number;
    body: string;
    location?: string | undefined;
    retryAfter?: string | undefined;
  }

  const queued = (id: string): Answer => {
    const location = `/v1/results/${id}`;
    return { status: 202, location, body: JSON.stringify({ id, status: 'queued', message: `the service is unavailable; the request is stored and will be computed when it returns: GET ${location}` }) };
  };

  const failed = (error: unknown, requestId: string, retryAfter: string | undefined): Answer => {
    const calc = toCalcError(error as Error);
    if (calc.code === 'INTERNAL') deps.logger.error({ err: error, reqId: requestId }, 'unhandled error');
    return { status: calc.httpStatus, body: JSON.stringify(errorBody(calc)), retryAfter: retryAfter ?? (calc.code === 'RATE_LIMITED' ? '1' : undefined) };
  };

  /** Who calls; throws the refusal (Retry-After kept in `refusal`), as Fastify's onRequest hook answers it. */
  const identityOf = (request: IncomingMessage, url: string, refusal: { retryAfter?: string }) => {
    const identity = deps.identify(url, request.headers, request.socket.remoteAddress);
    if (!identity.refused) return identity;
    if (identity.retryAfterS !== undefined) refusal.retryAfter = String(identity.retryAfterS);
    throw identity.refused;
  };

  async function operation(request: IncomingMessage, url: string, match: RegExpExecArray, requestId: string): Promise<Answer> {
    const refusal: { retryAfter?: string } = {};
    try {
      const identity = identityOf(request, url, refusal);
      // In the Fastify route's order, so that the same request gets the same error.
      const op = match[1] as ArithmeticOp;
      const num1 = parseOperand(match[2]!, 'a');
      const num2 = parseOperand(match[3]!, 'b');
      const headers = request.headers;
      const caller = { client: identity.client, requestId, idempotencyKey: idempotencyKeyOf(headers), callback: deps.callbackOf(headers) };
      const outcome = await deps.dispatcher.dispatch({ operation: op, num1, num2 }, caller);
      return outcome.kind === 'done' ? { status: 200, body: JSON.stringify({ operation: op, result: outcome.result, id: outcome.id }) } : queued(outcome.id);
    } catch (error) {
      return failed(error, requestId, refusal.retryAfter);
    }
  }

  async function evaluate(request: IncomingMessage, url: string, requestId: string): Promise<Answer | undefined> {
    const refusal: { retryAfter?: string } = {};
    try {
      const identity = identityOf(request, url, refusal);
      const text = await readBody(request);
      if (text === undefined) return undefined; // the client went away mid-body: nobody to answer
      const body = parseJsonBody(text);
      if (!validateEvaluateBody(body)) throw validationError(validateEvaluateBody);
      const { expression, callback } = body as EvaluateBody;
      // The Fastify route's order: the expression, the callback, the Idempotency-Key.
      parseExpression(expression);
      const headers = request.headers;
      const caller = { callback: deps.callbackOf(headers, callback), client: identity.client, requestId, idempotencyKey: idempotencyKeyOf(headers) };
      const outcome = await deps.dispatcher.dispatch({ operation: 'evaluate', expression }, caller);
      return outcome.kind === 'done' ? { status: 200, body: JSON.stringify(evaluatedBody(expression, outcome.result, outcome.id)) } : queued(outcome.id);
    } catch (error) {
      return failed(error, requestId, refusal.retryAfter);
    }
  }

  function send(response: ServerResponse, request: IncomingMessage, route: string, url: string, requestId: string, started: number, answer: Answer | undefined) {
    if (!answer) return;
    const out: Record<string, string | number> = { 'x-request-id': requestId };
    if (answer.retryAfter !== undefined) out['retry-after'] = answer.retryAfter;
    if (answer.location !== undefined) out.location = answer.location;
    out['content-type'] = JSON_TYPE;
    out['content-length'] = Buffer.byteLength(answer.body);
    response.writeHead(answer.status, out);
    response.end(answer.body);
    const seconds = (performance.now() - started) / 1000;
    const method = request.method!;
    deps.metrics.observeHttp(method, route, answer.status, seconds);
    if (logRequests) deps.logger.info({ reqId: requestId, method, url, status: answer.status, ms: Math.round(seconds * 1e6) / 1000 }, 'request');
  }

  /** A bug only (the routes catch what they call): answered 500, never an unhandled rejection. */
  const crashed = (response: ServerResponse) => (error: unknown) => {
    deps.logger.error({ err: error }, 'hot route failed');
    if (!response.headersSent) {
      response.writeHead(500, { 'content-type': JSON_TYPE });
      response.end(JSON.stringify(errorBody(new CalcError('INTERNAL', 'internal error'))));
    } else response.destroy();
  };

  server.removeListener('request', fastify);
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? '';
    const method = request.method;
    const match = method === 'GET' && !closing ? HOT_PATH.exec(url) : null;
    const hotEvaluate = !match && method === 'POST' && url === EVALUATE_PATH && !closing && plainJsonBody(request);
    const traceparent = request.headers.traceparent;
    if ((!match && !hotEvaluate) || tracingActive(typeof traceparent === 'string' ? { traceparent } : undefined)) {
      fastify(request, response);
      return;
    }
    served++;
    const started = performance.now();
    const requestId = requestIdFrom(request.headers);
    const answered = match ? operation(request, url, match, requestId) : evaluate(request, url, requestId);
    answered.then((answer) => send(response, request, match ? ROUTE : EVALUATE_PATH, url, requestId, started, answer)).catch(crashed(response));
  });
}

/**
 * A body the hot route reads as Fastify would: JSON in UTF-8, its length declared and within the
 * gateway's body limit. Anything else (chunked, too large, empty, another type) is Fastify's to answer.
 */
function plainJsonBody(request: IncomingMessage): boolean {
  const type = request.headers['content-type'];
  if (typeof type !== 'string' || !JSON_CONTENT_TYPE.test(type)) return false;
  if (request.headers['transfer-encoding'] !== undefined) return false;
  const length = Number(request.headers['content-length']);
  return Number.isInteger(length) && length > 0 && length <= BODY_LIMIT_BYTES;
}

/** The body as text (decoded once, at the end, as Fastify does), or undefined when the request was aborted. */
function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.once('end', () => resolve((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8')));
    request.once('aborted', () => resolve(undefined));
    request.once('error', () => resolve(undefined));
  });
}
