/**
 * The short chaos run of the regular suite: 15 s of kills, pauses, gateway crashes and Redis
 * restarts under load from three clients, with a fixed seed, then the full accounting. The long
 * run is `npm run chaos` (docs/reliability.md). Needs `npm run build` and redis-server on PATH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatText } from './report.js';
import { runChaos } from './run-chaos.js';

const SEED = 20251126;

test('when services, the gateway and Redis fail under load, then nothing is lost, doubled, wrong or misdelivered', { timeout: 110_000 }, async (t) => {
  const report = await runChaos({ durationMs: 15_000, clients: 3, concurrency: 3, seed: SEED, ratePerS: 80 });
  const text = formatText(report);
  t.diagnostic(text);

  const { counts, kills } = report;
  assert.deepEqual(
    { lost: counts.lost, doubled: counts.doubled, wrong: counts.wrong, misdelivered: counts.misdelivered },
    { lost: 0, doubled: 0, wrong: 0, misdelivered: 0 },
    text,
  );
  assert.deepEqual(report.anomalies, [], text);

  // Chaos really happened, and really made the system queue and the clients retry.
  for (const kind of ['service-kill', 'service-stop', 'gateway-kill', 'redis-restart'] as const) {
    assert.ok(kills[kind] >= 1, `no ${kind} happened\n${text}`);
  }
  assert.ok(Object.keys(kills.byTarget).some((k) => k.startsWith('service-kill evaluate')), `the evaluator was never killed\n${text}`);
  assert.ok(Object.keys(kills.byTarget).some((k) => k.startsWith('service-kill add#')), `no add replica was killed\n${text}`);
  assert.ok(counts.queued202 >= 10, `only ${counts.queued202} requests were queued\n${text}`);
  assert.ok(counts.retries >= 1, `no request had to be retried\n${text}`);
  assert.ok(counts.ok200 >= 100 && counts.rejected4xx >= 10, text);
  assert.ok(counts.delivered >= counts.tickets, text);
  assert.ok(report.wallMs < 100_000, `took ${report.wallMs} ms`);
});
