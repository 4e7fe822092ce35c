/** After known traffic — direct, queued, drained — the Prometheus counters read the expected numbers. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';

let cluster: Cluster | undefined;
after(() => cluster?.close());

/** The value of one sample in Prometheus text format, or 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

test('when requests are answered, queued and drained, then the gateway and service metrics count them exactly', async () => {
  cluster = await startCluster({ services: ['add', 'subtract', 'divide', 'evaluate'] });
  const base = cluster.gatewayUrl;
  for (let i = 0; i < 5; i++) assert.equal((await http(`${base}/add/${i}/1`)).status, 200);
  assert.equal((await http(`${base}/divide/1/0`)).status, 422);
  assert.equal((await http(`${base}/add/abc/1`)).status, 400);
  const tickets = [];
  for (let i = 0; i < 3; i++) tickets.push((await http(`${base}/multiply/${i}/2`)).body.id);

  let text = (await http(`${base}/metrics`)).text;
  assert.equal(sample(text, 'calcmesh_http_requests_total', { route: '/:op/:a/:b', status: '200' }), 5);
  assert.equal(sample(text, 'calcmesh_http_requests_total', { route: '/:op/:a/:b', status: '202' }), 3);
  assert.equal(sample(text, 'calcmesh_http_requests_total', { route: '/:op/:a/:b', status: '422' }), 1);
  assert.equal(sample(text, 'calcmesh_http_requests_total', { route: '/:op/:a/:b', status: '400' }), 1);
  assert.equal(sample(text, 'calcmesh_grpc_client_calls_total', { operation: 'add', outcome: 'OK' }), 5);
  assert.equal(sample(text, 'calcmesh_grpc_client_calls_total', { operation: 'divide', outcome: 'DOMAIN_ERROR' }), 1);
  assert.equal(sample(text, 'calcmesh_requests_queued_total', { operation: 'multiply' }), 3);
  assert.equal(sample(text, 'calcmesh_queue_depth', { operation: 'multiply' }), 3);
  assert.equal(sample(text, 'calcmesh_breaker_state', { operation: 'multiply', state: 'open' }), 1);
  assert.match(text, /^calcmesh_http_request_duration_seconds_bucket\{/m);
  assert.match(text, /^process_resident_memory_bytes /m);

  const multiply = await cluster.startService('multiply');
  for (const id of tickets) assert.equal((await http(`${base}/v1/results/${id}?wait=10`)).body.status, 'done');
  text = (await http(`${base}/metrics`)).text;
  assert.equal(sample(text, 'calcmesh_queue_depth', { operation: 'multiply' }), 0);

  const port = /"port":(\d+),"msg":"metrics listening"/.exec(multiply.output())?.[1];
  assert.ok(port, 'the service printed its metrics port');
  const own = await waitFor(async () => {
    const reply = await http(`http://127.0.0.1:${port}/metrics`);
    return sample(reply.text, 'calcmesh_tasks_drained_total', { operation: 'multiply', outcome: 'done' }) === 3 ? reply.text : undefined;
  }, 'the service to count its drained tasks');
  assert.match(own, /^calcmesh_grpc_server_calls_total|^# HELP calcmesh_grpc_server_calls_total/m);
});
