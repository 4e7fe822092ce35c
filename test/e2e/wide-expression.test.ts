/**
 * One client's very wide expressions must not become every client's outage: with every service
 * healthy, a 1,023-operation expression once a second next to a steady stream of simple
 * expressions from another client. The wide one's calls are capped per expression
 * (CALC_EVAL_MAX_INFLIGHT), and calls its own deadline cut short never open a circuit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http } from '../helpers/gateway.js';

let cluster: Cluster;
let gateway: { url: string };
before(async () => {
  cluster = await startCluster();
  gateway = { url: cluster.gatewayUrl };
});
after(() => cluster?.close());

const post = (expression: string) =>
  http(`${gateway.url}/v1/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression }) });

test('when a client sends 1,023-operation expressions once a second, then no simple expression of another client is queued', async () => {
  // A balanced sum of 512 products (3,5xx characters, under the 4,096 limit): 1,023 calls, 512 ready at once.
  const balanced = (leaves: number): string => (leaves === 1 ? '1*2' : `(${balanced(leaves / 2)}+${balanced(leaves / 2)})`);
  const wide = balanced(512);
  const simple: number[] = [];
  const wideStatuses: number[] = [];
  let running = true;
  const simpleClient = (async () => {
    while (running) simple.push((await post('(6+7)*3 - 8/2')).status);
  })();
  for (let second = 0; second < 4; second++) {
    const started = Date.now();
    wideStatuses.push((await post(wide)).status);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
  }
  running = false;
  await simpleClient;
  assert.ok(simple.length >= 4, `only ${simple.length} simple expressions were sent`);
  assert.deepEqual([...new Set(simple)], [200], `simple expressions answered ${simple.filter((s) => s !== 200).length} times otherwise (wide: ${wideStatuses})`);
});
