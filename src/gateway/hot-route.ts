/**
 * The hot route: `GET /{op}/{a}/{b}` answered on Node's `request` event before Fastify sees it.
 * Fastify's per-request machinery (its request and reply objects, hooks, routing, serializer,
 * finish listeners) was ~6 µs of a direct request's ~45 µs of gateway CPU; this path does the
 * same work with the same functions (caller identity, operand parsing, the dispatcher, the
 * error table, metrics and the access log) and answers byte for byte what the Fastify route
 * answers (test/integration/hot-route.test.ts holds the two to that).
 *
 * Whatever this path does not do is left to Fastify, unchanged: any other method or path, an
 * operand that needs percent-decoding or a URL with a query, a request under a trace (its spans
 * are made by Fastify's hooks), a rate limit (Fastify's plugin counts), and every request once
 * the gateway is closing. `inject()` always takes the Fastify route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ArithmeticOp } from '../shared/operations.js';
import { tracingActive } from '../shared/tracing.js';
import { parseOperand } from '../domain/index.js';
import { idempotencyKeyOf, requestIdFrom, type Identify } from './caller.js';
import type { createDispatcher } from './dispatch.js';
import { errorBody, toCalcError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { CallbackReader } from './webhooks.js';

/** The route as Fastify names it (the metrics' `route` label). */
const ROUTE = '/:op/:a/:b';
/** What Fastify's router would match without decoding anything; the rest goes to Fastify. */
const HOT_PATH = /^\/(add|subtract|multiply|divide)\/([^/?#%]{1,100})\/([^/?#%]{1,100})\/?$/;
const JSON_TYPE = 'application/json; charset=utf-8';

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

  async function answer(request: IncomingMessage, response: ServerResponse, url: string, match: RegExpExecArray, requestId: string, started: number) {
    const headers = request.headers;
    let status = 200;
    let body: string;
    let location: string | undefined;
    let retryAfter: string | undefined;
    try {
      const identity = deps.identify(url, headers, request.socket.remoteAddress);
      if (identity.refused) {
        if (identity.retryAfterS !== undefined) retryAfter = String(identity.retryAfterS);
        throw identity.refused;
      }
      // In the Fastify route's order, so that the same request gets the same error.
      const operation = match[1] as ArithmeticOp;
      const num1 = parseOperand(match[2]!, 'a');
      const num2 = parseOperand(match[3]!, 'b');
      const caller = { client: identity.client, requestId, idempotencyKey: idempotencyKeyOf(headers), callback: deps.callbackOf(headers) };
      const outcome = await deps.dispatcher.dispatch({ operation, num1, num2 }, caller);
      if (outcome.kind === 'done') {
        body = JSON.stringify({ operation, result: outcome.result, id: outcome.id });
      } else {
        status = 202;
        location = `/v1/results/${outcome.id}`;
        body = JSON.stringify({ id: outcome.id, status: 'queued', message: `the service is unavailable; the request is stored and will be computed when it returns: GET ${location}` });
      }
    } catch (error) {
      const calc = toCalcError(error as Error);
      if (calc.code === 'INTERNAL') deps.logger.error({ err: error, reqId: requestId }, 'unhandled error');
      if (calc.code === 'RATE_LIMITED') retryAfter ??= '1';
      status = calc.httpStatus;
      body = JSON.stringify(errorBody(calc));
    }
    const out: Record<string, string | number> = { 'x-request-id': requestId };
    if (retryAfter !== undefined) out['retry-after'] = retryAfter;
    if (location !== undefined) out.location = location;
    out['content-type'] = JSON_TYPE;
    out['content-length'] = Buffer.byteLength(body);
    response.writeHead(status, out);
    response.end(body);
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.observeHttp('GET', ROUTE, status, seconds);
    if (logRequests) deps.logger.info({ reqId: requestId, method: 'GET', url, status, ms: Math.round(seconds * 1e6) / 1000 }, 'request');
  }

  server.removeListener('request', fastify);
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? '';
    const match = request.method === 'GET' && !closing ? HOT_PATH.exec(url) : null;
    const traceparent = match ? request.headers.traceparent : undefined;
    if (!match || tracingActive(typeof traceparent === 'string' ? { traceparent } : undefined)) {
      fastify(request, response);
      return;
    }
    served++;
    answer(request, response, url, match, requestIdFrom(request.headers), performance.now()).catch((error: unknown) => {
      // Only a bug gets here (answer() catches what it calls): never an unhandled rejection.
      deps.logger.error({ err: error }, 'hot route failed');
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': JSON_TYPE });
        response.end(JSON.stringify(errorBody(new CalcError('INTERNAL', 'internal error'))));
      } else response.destroy();
    });
  });
}
