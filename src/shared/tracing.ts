/**
 * Tracing with the OpenTelemetry API, by hand: the trace context travels explicitly (as the W3C
 * `traceparent`/`tracestate` strings, on calls, contexts and queued tasks), never through an
 * async context manager, so that it crosses our own node:http2 client, the multiplexed Stream and
 * the queue the same way, and nothing is patched (auto-instrumentation under ESM is fragile and
 * knows none of these).
 *
 * Until `startTracing` registers the SDK (only when OTEL_EXPORTER_OTLP_ENDPOINT is set, and only
 * then are the SDK and the exporter imported) the API's tracer is a no-op: a request without a
 * `traceparent` costs one property test per span site, and one that has a `traceparent` passes it
 * on unchanged, so a traced caller's trace still reaches traced services behind an untraced hop.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { RPC_NAMES } from './operations.js';

export { SpanKind };

/** The W3C trace context of a call, as its headers carry it; both absent when not traced. */
export interface TraceContext {
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/** One span being recorded, and the context its children carry. */
export interface Traced {
  /** What a call made under this span sends on; undefined when there is nothing to propagate. */
  readonly context: TraceContext | undefined;
  setAttribute(key: string, value: string | number | boolean): void;
  /** Ends the span; an error marks it failed (with the calcmesh code when it has one). */
  end(error?: unknown): void;
}

const propagator = new W3CTraceContextPropagator();
const getter: TextMapGetter<TraceContext> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => (key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined),
};
const setter: TextMapSetter<{ traceparent?: string; tracestate?: string }> = {
  set: (carrier, key, value) => {
    if (key === 'traceparent') carrier.traceparent = value;
    else if (key === 'tracestate') carrier.tracestate = value;
  },
};

let recording = false;
const tracer = () => trace.getTracer('calcmesh');

const NOT_TRACED: Traced = { context: undefined, setAttribute() {}, end() {} };

/** Whether a span under `parent` would be more than a no-op: build its attributes only then. */
export const tracingActive = (parent: TraceContext | undefined): boolean => recording || Boolean(parent?.traceparent);

/** A span under `parent` run around `work`: ended with its outcome. */
export async function inSpan<T>(name: string, kind: SpanKind, parent: TraceContext | undefined, attributes: Attributes | undefined, work: (span: Traced) => Promise<T>): Promise<T> {
  const span = startSpan(name, kind, parent, attributes);
  try {
    const value = await work(span);
    span.end();
    return value;
  } catch (error) {
    span.end(error);
    throw error;
  }
}

/**
 * Starts a span under `parent` (a malformed or absent traceparent starts a new trace; never an
 * error). Without a registered SDK and without a parent this is one branch and no allocation.
 */
export function startSpan(name: string, kind: SpanKind, parent: TraceContext | undefined, attributes?: Attributes): Traced {
  const parentHeader = parent?.traceparent;
  if (!recording && !parentHeader) return NOT_TRACED;
  const parentContext = parentHeader ? propagator.extract(ROOT_CONTEXT, parent, getter) : ROOT_CONTEXT;
  const span = tracer().startSpan(name, { kind, attributes }, parentContext);
  const carried: { traceparent?: string; tracestate?: string } = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carried, setter);
  return wrap(span, carried.traceparent ? carried : undefined);
}

function wrap(span: Span, context: TraceContext | undefined): Traced {
  return {
    context,
    setAttribute: (key, value) => void span.setAttribute(key, value),
    end(error?: unknown) {
      if (error !== undefined) {
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string') span.setAttribute('calcmesh.error_code', code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      span.end();
    },
  };
}

/** The trace context of a parsed traceparent, or undefined when it is malformed (then: a new trace). */
export function parseTraceparent(header: string | undefined): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (!header) return undefined;
  const span = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, { traceparent: header }, getter));
  return span ? { traceId: span.traceId, spanId: span.spanId, sampled: (span.traceFlags & 1) === 1 } : undefined;
}

interface RpcSpan {
  readonly name: string;
  readonly attributes: Attributes;
}

function rpcSpanOf(method: string): RpcSpan {
  const service = `calculator.${method === 'Evaluate' ? 'Evaluator' : 'Calculator'}`;
  return { name: `${service}/${method}`, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } };
}

/** Built once per method, so that an untraced call allocates nothing; a method a peer made up gets one generic name. */
const RPC_SPANS = new Map(Object.values(RPC_NAMES).map((method) => [method, rpcSpanOf(method)]));
const UNKNOWN_RPC = rpcSpanOf('unknown');

/**
 * A gRPC call's span (`calculator.Calculator/Add`, with rpc.system, rpc.service, rpc.method: the
 * OpenTelemetry RPC conventions) under the caller's trace context.
 */
export function startRpcSpan(method: string, kind: SpanKind, parent: TraceContext | undefined): Traced {
  if (!recording && !parent?.traceparent) return NOT_TRACED;
  const { name, attributes } = RPC_SPANS.get(method) ?? UNKNOWN_RPC;
  return startSpan(name, kind, parent, attributes);
}

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT; undefined leaves tracing off (nothing is loaded). */
  readonly endpoint: string | undefined;
  /** The service name unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise: `calcmesh-<component>`. */
  readonly serviceName: string;
}

/**
 * Registers the SDK with a batching OTLP/HTTP (JSON) exporter when an endpoint is configured.
 * config.ts reads only the switch (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SDK_DISABLED) and checks
 * OTEL_EXPORTER_OTLP_PROTOCOL; the SDK reads its other standard variables itself
 * (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _TRACES_ENDPOINT, OTEL_TRACES_SAMPLER, OTEL_BSP_*,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES): they are the
 * SDK's interface, documented by OpenTelemetry, and re-reading them here would only drift.
 * Returns what flushes and stops it (called on shutdown).
 */
export async function startTracing(options: TracingOptions): Promise<() => Promise<void>> {
  if (!options.endpoint) return async () => {};
  const [sdk, { OTLPTraceExporter }, resources, { ATTR_SERVICE_NAME }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  // The detector reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (which wins): both win over our default.
  const resource = resources
    .resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName })
    .merge(resources.resourceFromAttributes(resources.envDetector.detect().attributes ?? {}));
  const provider = new sdk.BasicTracerProvider({
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter())],
  });
  trace.setGlobalTracerProvider(provider);
  recording = true;
  return async () => {
    recording = false;
    await provider.shutdown().catch(() => undefined);
  };
}
