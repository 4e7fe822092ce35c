import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGatewayMetrics } from '../../src/gateway/metrics.js';

/** The value of one sample line of the Prometheus text, or undefined when it is absent. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

test('when requests with different methods, routes and statuses are observed, then each combination is counted on its own', async () => {
  const metrics = createGatewayMetrics({ defaultMetrics: false });
  metrics.observeHttp('GET', '/:op/:a/:b', 200, 0.002);
  metrics.observeHttp('GET', '/:op/:a/:b', 200, 0.003);
  metrics.observeHttp('GET', '/:op/:a/:b', 202, 0.001);
  metrics.observeHttp('POST', '/v1/evaluate', 200, 0.2);
  const text = await metrics.registry.metrics();
  assert.equal(sample(text, 'calcmesh_http_requests_total{method="GET",route="/:op/:a/:b",status="200"}'), 2);
  assert.equal(sample(text, 'calcmesh_http_requests_total{method="GET",route="/:op/:a/:b",status="202"}'), 1);
  assert.equal(sample(text, 'calcmesh_http_requests_total{method="POST",route="/v1/evaluate",status="200"}'), 1);
  assert.equal(sample(text, 'calcmesh_http_request_duration_seconds_bucket{le="0.0025",method="GET",route="/:op/:a/:b",status="200"}'), 1);
  assert.equal(sample(text, 'calcmesh_http_request_duration_seconds_count{method="GET",route="/:op/:a/:b",status="200"}'), 2);
  assert.equal(sample(text, 'calcmesh_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/evaluate",status="200"}'), 0);
});

test('when gRPC calls are observed per replica and outcome, then the counts and the latency histogram keep them apart', async () => {
  const metrics = createGatewayMetrics({ defaultMetrics: false });
  metrics.observeCall('add', '127.0.0.1:1', 'OK', 0.001);
  metrics.observeCall('add', '127.0.0.1:2', 'OK', 0.001);
  metrics.observeCall('add', '127.0.0.1:1', 'UNAVAILABLE', 0.5);
  metrics.observeCall('add', '127.0.0.1:1', 'OK', 0.001);
  const text = await metrics.registry.metrics();
  assert.equal(sample(text, 'calcmesh_grpc_client_calls_total{operation="add",target="127.0.0.1:1",outcome="OK"}'), 2);
  assert.equal(sample(text, 'calcmesh_grpc_client_calls_total{operation="add",target="127.0.0.1:2",outcome="OK"}'), 1);
  assert.equal(sample(text, 'calcmesh_grpc_client_calls_total{operation="add",target="127.0.0.1:1",outcome="UNAVAILABLE"}'), 1);
  assert.equal(sample(text, 'calcmesh_grpc_client_duration_seconds_count{operation="add",outcome="OK"}'), 3);
  assert.equal(sample(text, 'calcmesh_grpc_client_duration_seconds_count{operation="add",outcome="UNAVAILABLE"}'), 1);
});
