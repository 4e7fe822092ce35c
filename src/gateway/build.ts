/**
 * buildGateway() assembles the HTTP gateway and returns it unstarted: tests call `inject()` or
 * `listen({ port: 0 })` on it; only main.ts listens on the configured address.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../shared/config.js';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { compute, evaluateLocally, parseExpression } from '../domain/index.js';
import type { DurableQueue } from '../queue/types.js';
import type { Upstreams } from '../upstream/index.js';
import { installCallerIdentity, MAX_URL_CHARS, requestIdFrom, uriTooLong } from './caller.js';
import { createDispatcher, type Job } from './dispatch.js';
import { installErrorHandling, sendError, toCalcError } from './errors.js';
import { evaluateRoutes } from './routes/evaluate.js';
import { healthRoutes } from './routes/health.js';
import { operationRoutes } from './routes/operations.js';
import { resultRoutes } from './routes/results.js';
import { adminRoutes } from './routes/admin.js';
import { eventRoutes } from './routes/events.js';
import { historyRoutes } from './routes/history.js';
import { callbackReader, startWebhookSender } from './webhooks.js';
import { VERSION } from '../shared/version.js';
import { dashboardRoutes } from '../dashboard/index.js';
import { createActivityLog } from './activity.js';
import { installOpenApi } from './openapi.js';
import { installRateLimit } from './rate-limit.js';
import { answerConnect } from './methods.js';
import { capConnections } from './connections.js';
import { installTracing } from './tracing.js';
import { installHotRoute } from './hot-route.js';
import { AJV_CUSTOM_OPTIONS, BODY_LIMIT_BYTES } from './validation.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';

export interface GatewayDeps {
  readonly upstreams: Upstreams;
  readonly queue: DurableQueue;
  readonly logger: Logger;
  /** Created here when absent (then gRPC calls and circuits are not measured). */
  readonly metrics?: GatewayMetrics;
}

export type GatewayConfig = Pick<Config, 'deadlineMs' | 'apiKeys'> & Partial<Pick<Config, 'rateLimit' | 'adminKeys' | 'authFailuresPerMin' | 'http' | 'leaseMs' | 'webhooks' | 'events'>>;

/** Event streams' timing when the config leaves it out (tests): loadConfig's defaults. */
const EVENT_DEFAULTS = { heartbeatMs: 15_000, pollMs: 250, maxStreams: 1000 };

/** The HTTP server's limits when the caller gives none (the same as loadConfig's defaults). */
const DEFAULT_HTTP = { maxConnections: 800, keepAliveTimeoutMs: 5000, headersTimeoutMs: 10_000 };

export async function buildGateway(config: GatewayConfig, deps: GatewayDeps): Promise<FastifyInstance> {
  const limits = config.http ?? DEFAULT_HTTP;
  const app = Fastify({
    // An idle keep-alive socket is closed after seconds, not Fastify's 72 s.
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node enforces headersTimeout only when it checks, every connectionsCheckingInterval (30 s by default).
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) },
    // Our own access log below; Fastify's request logging stays off.
    logger: false,
    genReqId: (req) => requestIdFrom(req.headers),
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: 1000, ignoreTrailingSlash: true },
    // Strict JSON: `{"expression": 42}` is an error, not the string "42".
    ajv: { customOptions: AJV_CUSTOM_OPTIONS },
    // A request Node's HTTP parser refuses never reaches Fastify's handlers: answer it in JSON too.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return;
      const { error: calc, status } = clientError((error as { code?: string }).code);
      const body = JSON.stringify(calc.toJSON());
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    },
    frameworkErrors: (error, request, reply) => {
      sendError(reply, request.url.length > MAX_URL_CHARS ? uriTooLong() : toCalcError(error));
    },
  });
  installErrorHandling(app, deps.logger);
  installTracing(app);
  answerConnect(app);
  capConnections(app.server, limits.maxConnections, deps.logger);
  const identify = installCallerIdentity(app, { apiKeys: config.apiKeys, adminKeys: config.adminKeys, authFailuresPerMin: config.authFailuresPerMin });
  await installOpenApi(app, { apiKeys: config.apiKeys.size > 0 });
  if (config.rateLimit) await installRateLimit(app, config.rateLimit);
  const metrics = deps.metrics ?? createGatewayMetrics({ queue: deps.queue, logger: deps.logger });
  const logRequests = deps.logger.isLevelEnabled('info');
  // A callback hook: an async one costs a promise per request for nothing awaited.
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    metrics.observeHttp(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, seconds);
    if (logRequests) {
      deps.logger.info({ reqId: request.id, method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(seconds * 1e6) / 1000 }, 'request');
    }
    done();
  });

  const activity = createActivityLog();
  const dispatcher = createDispatcher({ upstreams: deps.upstreams, queue: deps.queue, deadlineMs: config.deadlineMs, logger: deps.logger, precheck, activity, metrics });
  app.get('/v1/activity', { schema: { tags: ['operate'], summary: 'the latest requests this gateway handled: the caller\'s own; all of them for an operator key' } }, async (request) =>
    ({ requests: activity.latest(request.operator ? undefined : request.client) }));
  app.get('/metrics', { schema: { tags: ['operate'], summary: 'Prometheus metrics' } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  dashboardRoutes(app);
  healthRoutes(app, { queue: deps.queue, logger: deps.logger, upstreams: deps.upstreams, version: VERSION, startedAt: Date.now(), leaseMs: config.leaseMs, webhooks: Boolean(config.webhooks?.secret) });
  resultRoutes(app, deps.queue);
  historyRoutes(app, deps.queue);
  eventRoutes(app, deps.queue, config.events ?? EVENT_DEFAULTS);
  adminRoutes(app, { queue: deps.queue, adminKeys: config.adminKeys ?? new Map(), logger: deps.logger });
  const callbackOf = callbackReader(config.webhooks);
  evaluateRoutes(app, dispatcher, callbackOf);
  operationRoutes(app, dispatcher, callbackOf);
  // A rate limit is counted by Fastify's plugin: then every request goes through Fastify.
  if (config.rateLimit) app.decorate('hotRouteServed', () => 0);
  else installHotRoute(app, { dispatcher, identify, callbackOf, metrics, logger: deps.logger });
  const secret = config.webhooks?.secret;
  if (config.webhooks && secret) {
    const sender = startWebhookSender({ queue: deps.queue, config: { ...config.webhooks, secret }, logger: deps.logger, onAttempt: metrics.webhookAttempt });
    app.addHook('onClose', () => sender.stop());
  }
  await app.ready();
  return app;
}

/** What a request Node's parser refused gets: its headers came too slowly, were too large, or were malformed. */
function clientError(code: string | undefined): { error: CalcError; status: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { error: new CalcError('REQUEST_TIMEOUT', 'the request line and headers did not arrive in time'), status: '408 Request Timeout' };
  if (code === 'HPE_HEADER_OVERFLOW') return { error: new CalcError('PAYLOAD_TOO_LARGE', 'the request line or headers are too large'), status: '413 Payload Too Large' };
  return { error: new CalcError('INVALID_ARGUMENT', 'malformed HTTP request'), status: '400 Bad Request' };
}

/** The same pure checks the services make, so that a domain error is answered at once and never queued. */
function precheck(job: Job): void {
  if (job.operation === 'evaluate') evaluateLocally(parseExpression(job.expression));
  else compute(job.operation, job.num1, job.num2);
}
