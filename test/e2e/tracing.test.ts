/**
 * One trace end to end, through real processes exporting over OTLP/HTTP (JSON) to a receiver of
 * the test's own: a client's traceparent on `POST /v1/evaluate` reaches the gateway, the
 * evaluator and the arithmetic services it calls (over the default transport, the Stream rpc);
 * a request queued while its service is down is drained, after the restart, in the same trace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';

const SERVER = 2; // OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer
const CLIENT = 3;
const CONSUMER = 5;

const traceparentOf = (traceId: string, spanId: string) => `00-${traceId}-${spanId}-01`;
const randomHex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

describe('tracing across processes', () => {
  let receiver: OtlpReceiver;
  let cluster: Cluster | undefined;

  before(async () => {
    receiver = await startOtlpReceiver();
    cluster = await startCluster({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        // Export within tens of ms: the test's processes end by SIGKILL, with no flush.
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
    });
  });
  after(async () => {
    await cluster?.close();
    await receiver?.close();
  });

  it('when a client sends a traceparent with POST /v1/evaluate, then the gateway, the evaluator and the arithmetic services it called export spans of that one trace', async () => {
    const traceId = randomHex(16);
    const clientSpan = randomHex(8);
    const reply = await http(`${cluster!.gatewayUrl}/v1/evaluate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparentOf(traceId, clientSpan), tracestate: 'test=1' },
      body: JSON.stringify({ expression: '(6+7)*3' }),
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.result, 39);

    const wanted = ['calcmesh-gateway', 'calcmesh-evaluate', 'calcmesh-add', 'calcmesh-multiply'];
    const spans = await waitFor(() => {
      const got = receiver.trace(traceId);
      return wanted.every((service) => got.some((s) => s.service === service && s.kind === SERVER)) ? got : undefined;
    }, `server spans of ${wanted.join(', ')} in trace ${traceId}`, 20_000);

    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const route = spans.find((s) => s.service === 'calcmesh-gateway' && s.kind === SERVER)!;
    assert.equal(route.name, 'POST /v1/evaluate');
    assert.equal(route.parentSpanId, clientSpan, "the gateway's span is a child of the client's");
    assert.equal(route.attributes['http.response.status_code'], 200);

    // Each service's server span is the child of its caller's client span, itself under the caller's server span.
    const parentService = (span: ReceivedSpan) => {
      const client = byId.get(span.parentSpanId);
      assert.ok(client, `the parent of ${span.service}'s ${span.name} was exported`);
      assert.equal(client.kind, CLIENT);
      return byId.get(client.parentSpanId)?.service;
    };
    const evaluator = spans.find((s) => s.service === 'calcmesh-evaluate' && s.kind === SERVER)!;
    assert.equal(evaluator.name, 'calculator.Evaluator/Evaluate');
    assert.equal(parentService(evaluator), 'calcmesh-gateway');
    for (const service of ['calcmesh-add', 'calcmesh-multiply']) {
      const span = spans.find((s) => s.service === service && s.kind === SERVER)!;
      assert.equal(parentService(span), 'calcmesh-evaluate');
    }
  });

  it('when a request is queued while its service is down, then its drain after the restart is a span in the request\'s trace', async () => {
    await cluster!.signalService('add', 'SIGKILL');
    const traceId = randomHex(16);
    const reply = await waitFor(async () => {
      const r = await http(`${cluster!.gatewayUrl}/add/20/22`, { headers: { traceparent: traceparentOf(traceId, randomHex(8)) } });
      return r.status === 202 ? r : undefined;
    }, 'the gateway to queue an add (202)');
    const id: string = reply.body.id;

    await cluster!.startService('add');
    const ticket = (await http(`${cluster!.gatewayUrl}/v1/results/${id}?wait=15`)).body;
    assert.deepEqual([ticket.status, ticket.result], ['done', 42]);

    const spans = await waitFor(() => {
      const got = receiver.trace(traceId);
      return got.some((s) => s.service === 'calcmesh-add' && s.kind === CONSUMER) ? got : undefined;
    }, `the drain's span in trace ${traceId}`, 20_000);
    const processing = spans.find((s) => s.service === 'calcmesh-add' && s.kind === CONSUMER)!;
    assert.equal(processing.name, 'process add');
    assert.equal(processing.attributes['messaging.message.id'], id);
    const send = spans.find((s) => s.spanId === processing.parentSpanId);
    assert.ok(send, 'the enqueue span of the gateway was exported');
    assert.equal(send.service, 'calcmesh-gateway');
    assert.equal(send.name, 'send add');
  });
});
