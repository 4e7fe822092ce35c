/**
 * The gateway route's span: one SERVER span per HTTP request, a child of the client's W3C
 * `traceparent`/`tracestate` when it sent a well-formed one (else the root of a new trace, never
 * an error). Its context is what the request's upstream calls and queued task carry on.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SpanKind, startSpan, tracingActive, type TraceContext, type Traced } from '../shared/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's span; null when nothing is traced. */
    span: Traced | null;
  }
}

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

export function installTracing(app: FastifyInstance): void {
  app.decorateRequest('span', null);
  // Callback hooks: they run on every request and await nothing.
  app.addHook('onRequest', (request, _reply, done) => {
    const traceparent = header(request, 'traceparent');
    const parent: TraceContext | undefined = traceparent ? { traceparent, tracestate: header(request, 'tracestate') } : undefined;
    if (tracingActive(parent)) {
      const route = request.routeOptions.url;
      request.span = startSpan(route ? `${request.method} ${route}` : request.method, SpanKind.SERVER, parent, {
        'http.request.method': request.method,
        ...(route && { 'http.route': route }),
        'url.path': request.url.split('?', 1)[0]!.slice(0, 256),
        'calcmesh.request_id': request.id,
      });
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const span = request.span;
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      // A 4xx is the client's: only a 5xx marks the server span failed (the HTTP conventions).
      span.end(reply.statusCode >= 500 ? new Error(`HTTP ${reply.statusCode}`) : undefined);
    }
    done();
  });
}

/** The trace context this request's own calls and tasks carry. */
export const traceOf = (request: FastifyRequest): TraceContext | undefined => request.span?.context;
