/**
 * Trace context parsing and propagation (src/shared/tracing.ts), first without an SDK (what every
 * process runs when OTEL_EXPORTER_OTLP_ENDPOINT is unset), then with the SDK exporting to a
 * receiver of the test's own. node --test runs each file in its own process, so registering the
 * SDK here touches no other test.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseTraceparent, SpanKind, startSpan, startTracing } from '../../src/shared/tracing.js';
import { loadConfig } from '../../src/shared/config.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/gateway.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

const MALFORMED = [
  '',
  'garbage',
  `00-${TRACE_ID}-00f067aa0ba902b7`, // no flags
  `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, // all-zero trace id
  `00-${TRACE_ID}-${'0'.repeat(16)}-01`, // all-zero span id
  `ff-${TRACE_ID}-00f067aa0ba902b7-01`, // version ff is invalid
  `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`, // upper-case hex
  `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`, // version 00 has exactly four fields
  `0-${TRACE_ID}-00f067aa0ba902b7-01`,
  'x'.repeat(10_000),
];

describe('traceparent parsing', () => {
  it('when a traceparent is well formed, then its trace id, parent span id and sampled flag are read', () => {
    assert.deepEqual(parseTraceparent(PARENT), { traceId: TRACE_ID, spanId: '00f067aa0ba902b7', sampled: true });
    assert.equal(parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-00`)?.sampled, false);
  });

  it('when a traceparent is malformed, then it is no trace context (and nothing throws)', () => {
    for (const header of MALFORMED) assert.equal(parseTraceparent(header), undefined, JSON.stringify(header.slice(0, 80)));
  });
});

describe('propagation without an SDK (tracing off)', () => {
  it('when a call has no trace context, then its span carries nothing on', () => {
    const span = startSpan('x', SpanKind.SERVER, undefined);
    assert.equal(span.context, undefined);
    span.end();
  });

  it('when a call has a valid traceparent and tracestate, then both are passed on unchanged', () => {
    const span = startSpan('x', SpanKind.SERVER, { traceparent: PARENT, tracestate: 'vendor=abc,other=1' });
    assert.equal(span.context?.traceparent, PARENT);
    assert.equal(span.context?.tracestate, 'vendor=abc,other=1');
    span.end(new Error('failed spans end quietly too'));
  });

  it('when a traceparent is malformed, then nothing is passed on and nothing throws', () => {
    for (const traceparent of MALFORMED) {
      const span = startSpan('x', SpanKind.SERVER, { traceparent, tracestate: 'vendor=abc' });
      assert.equal(span.context, undefined, JSON.stringify(traceparent.slice(0, 80)));
      span.end();
    }
  });
});

describe('configuration', () => {
  it('when no OTLP endpoint is set, then tracing is off', () => {
    assert.equal(loadConfig({}).tracing.endpoint, undefined);
  });

  it('when an endpoint is set with OTEL_SDK_DISABLED=true, then tracing is off', () => {
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }).tracing.endpoint, undefined);
  });

  it('when the protocol is not http/json, then loading the configuration fails naming the variable', () => {
    assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL/);
    assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracing.endpoint, 'http://127.0.0.1:4318');
  });
});

describe('with the SDK exporting over OTLP/HTTP JSON', () => {
  let receiver: OtlpReceiver | undefined;
  let stop: (() => Promise<void>) | undefined;
  after(async () => {
    await stop?.();
    await receiver?.close();
  });

  it('when spans are started under a valid, a malformed and no traceparent, then the first continues the trace and the others start new ones, all exported', async () => {
    receiver = await startOtlpReceiver();
    // The exporter reads the endpoint from the environment, as in a real process (the SDK's own variables).
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '20';
    stop = await startTracing({ endpoint: receiver.endpoint, serviceName: 'calcmesh-unit' });

    const child = startSpan('child', SpanKind.SERVER, { traceparent: PARENT });
    const fresh = startSpan('malformed', SpanKind.SERVER, { traceparent: 'garbage' });
    const root = startSpan('root', SpanKind.SERVER, undefined);
    const grandchild = startSpan('grandchild', SpanKind.CLIENT, child.context);
    for (const span of [grandchild, child, fresh, root]) span.end();

    const childId = parseTraceparent(child.context?.traceparent);
    assert.equal(childId?.traceId, TRACE_ID);
    assert.notEqual(childId?.spanId, '00f067aa0ba902b7', 'a new span id under the parent');
    for (const other of [fresh, root]) {
      const parsed = parseTraceparent(other.context?.traceparent);
      assert.ok(parsed && parsed.traceId !== TRACE_ID, 'a new trace');
    }

    const spans = await waitFor(() => (receiver!.spans.length >= 4 ? receiver!.spans : undefined), 'four exported spans');
    const byName = new Map(spans.map((s) => [s.name, s]));
    assert.deepEqual(new Set(spans.map((s) => s.service)), new Set(['calcmesh-unit']));
    assert.equal(byName.get('child')?.traceId, TRACE_ID);
    assert.equal(byName.get('child')?.parentSpanId, '00f067aa0ba902b7');
    assert.equal(byName.get('grandchild')?.parentSpanId, byName.get('child')?.spanId);
    assert.equal(byName.get('malformed')?.parentSpanId, '');
  });
});
