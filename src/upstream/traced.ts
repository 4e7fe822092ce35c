/**
 * One client span per upstream call (failover attempts included: they are one call to the
 * service), its context sent on the wire in place of the caller's. Untraced calls (no SDK, no
 * parent) go straight through, without a span or a copy of their options.
 */
import { SpanKind, startRpcSpan, type TraceContext, type Traced } from '../shared/tracing.js';
import { RPC_NAMES } from '../shared/operations.js';
import type { Upstreams } from './pool.js';

function ended<T>(span: Traced, call: Promise<T>): Promise<T> {
  return call.then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      span.end(error);
      throw error;
    },
  );
}

const span = (method: string, options: TraceContext): Traced => startRpcSpan(method, SpanKind.CLIENT, options);

export function withTracing(upstreams: Upstreams): Upstreams {
  return {
    ...upstreams,
    arithmetic(op, num1, num2, options) {
      const traced = span(RPC_NAMES[op], options);
      if (!traced.context) return upstreams.arithmetic(op, num1, num2, options);
      return ended(traced, upstreams.arithmetic(op, num1, num2, { ...options, ...traced.context }));
    },
    evaluate(expression, options) {
      const traced = span(RPC_NAMES.evaluate, options);
      if (!traced.context) return upstreams.evaluate(expression, options);
      return ended(traced, upstreams.evaluate(expression, { ...options, ...traced.context }));
    },
  };
}
