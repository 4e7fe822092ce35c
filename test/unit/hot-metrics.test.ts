import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/shared/hot-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: Array<[{ method: string; status: string }, number]> = [
  [{ method: 'GET', status: '200' }, 0.0004],
  [{ method: 'GET', status: '200' }, 0.001], // on a bound: counted in that bucket (le is inclusive)
  [{ method: 'POST', status: '202' }, 0.05],
  [{ method: 'GET', status: '200' }, 3], // above every bound: only +Inf
  [{ method: 'GET', status: '200' }, 0.02],
];

/** The same observations through prom-client's own metrics and through the hot ones, on two registries. */
async function both(setDefaultLabels = false) {
  const plain = new Registry();
  const hot = new Registry();
  if (setDefaultLabels) for (const r of [plain, hot]) r.setDefaultLabels({ service: 'add' });
  const config = { name: 'x_seconds', help: 'x', labelNames: ['method', 'status'] as const, buckets: BUCKETS };
  const plainHistogram = new Histogram({ ...config, labelNames: [...config.labelNames], registers: [plain] });
  const plainCounter = new Counter({ name: 'x_total', help: 'x', labelNames: ['method', 'status'], registers: [plain] });
  const hotHistogram = new HotHistogram({ ...config, labelNames: [...config.labelNames], registers: [hot] });
  const hotCounter = new HotCounter({ name: 'x_total', help: 'x', labelNames: ['method', 'status'], registers: [hot] });
  for (const [labels, value] of OBSERVED) {
    plainHistogram.observe(labels, value);
    plainCounter.inc(labels);
    hotHistogram.series(labels).observe(value);
    hotCounter.series(labels).inc();
  }
  return { plain, hot, hotHistogram, hotCounter };
}

test('when the same requests are observed by the hot metrics and by prom-client\'s, then /metrics prints the same text', async () => {
  for (const defaults of [false, true]) {
    const { plain, hot } = await both(defaults);
    const expected = await plain.metrics();
    assert.match(expected, /x_seconds_bucket\{le="0.001",(service="add",)?method="GET",status="200"\} 2\n/, 'the comparison has buckets to compare');
    assert.equal(await hot.metrics(), expected);
  }
});

test('when the hot metrics are read as JSON, then the values are prom-client\'s', async () => {
  const { plain, hot } = await both();
  assert.deepEqual(await hot.getMetricsAsJSON(), await plain.getMetricsAsJSON());
});

test('when a series is asked for twice, in any label order, then it is the same series', async () => {
  const { hotCounter, hot } = await both();
  assert.equal(hotCounter.series({ status: '200', method: 'GET' }), hotCounter.series({ method: 'GET', status: '200' }));
  hotCounter.series({ status: '200', method: 'GET' }).inc();
  assert.match(await hot.metrics(), /x_total\{method="GET",status="200"\} 5\n/);
});

test('when the registry is reset, then the hot series count from zero', async () => {
  const { hot, hotHistogram } = await both();
  hot.resetMetrics();
  assert.doesNotMatch(await hot.metrics(), /x_total\{|x_seconds_count\{/);
  hotHistogram.series({ method: 'GET', status: '200' }).observe(0.5);
  assert.match(await hot.metrics(), /x_seconds_count\{method="GET",status="200"\} 1\n/);
});

test('when a value is not a finite number, then it is not counted', async () => {
  const { hot, hotHistogram } = await both();
  hotHistogram.series({ method: 'GET', status: '200' }).observe(Number.NaN);
  assert.match(await hot.metrics(), /x_seconds_count\{method="GET",status="200"\} 4\n/);
});
