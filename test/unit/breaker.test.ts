import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerState } from '../../src/resilience/index.js';

function setup(probeAnswers: boolean[] = []) {
  let now = 1_000;
  const changes: BreakerState[] = [];
  let probes = 0;
  const breaker = new CircuitBreaker({
    failureThreshold: 3,
    halfOpenAfterMs: 5_000,
    now: () => now,
    probe: async () => {
      probes += 1;
      return probeAnswers.shift() ?? false;
    },
    onStateChange: (state) => changes.push(state),
  });
  return { breaker, changes, advance: (ms: number) => (now += ms), probes: () => probes };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('when failures are fewer than the threshold or broken by a success, then the breaker stays closed', () => {
  const { breaker } = setup();
  breaker.failure();
  breaker.failure();
  breaker.success();
  breaker.failure();
  breaker.failure();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.allows(), true);
});

test('when failures reach the threshold, then it opens and refuses calls without probing until the time has passed', () => {
  const { breaker, advance, probes } = setup();
  for (let i = 0; i < 3; i++) breaker.failure();
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.allows(), false);
  advance(4_999);
  assert.equal(breaker.allows(), false);
  assert.equal(probes(), 0);
});

test('when the open time has passed and the probe answers SERVING, then half-open, then closed', async () => {
  const { breaker, advance, changes } = setup([true]);
  for (let i = 0; i < 3; i++) breaker.failure();
  advance(5_000);
  assert.equal(breaker.allows(), false, 'the probe, not a caller, tests the replica');
  assert.equal(breaker.state, 'half-open');
  await settle();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.allows(), true);
  assert.deepEqual(changes, ['open', 'half-open', 'closed']);
});

test('when the probe fails, then the breaker opens again for another full period', async () => {
  const { breaker, advance, probes } = setup([false, true]);
  for (let i = 0; i < 3; i++) breaker.failure();
  advance(5_000);
  breaker.allows();
  await settle();
  assert.equal(breaker.state, 'open');
  advance(4_000);
  assert.equal(breaker.allows(), false);
  assert.equal(probes(), 1);
  advance(1_000);
  breaker.allows();
  await settle();
  assert.equal(breaker.state, 'closed');
});

test('when the replica says it is going away, then trip opens at once, and a SERVING report closes it', () => {
  const { breaker } = setup();
  breaker.trip();
  assert.equal(breaker.state, 'open');
  breaker.success();
  assert.equal(breaker.state, 'closed');
});

test('when the probe says only a real call can tell (no health service), then half-open lets one call through and its outcome decides', async () => {
  let now = 0;
  const breaker = new CircuitBreaker({ failureThreshold: 1, halfOpenAfterMs: 100, now: () => now, probe: async () => 'trial' });
  breaker.failure();
  assert.equal(breaker.state, 'open');
  now += 100;
  assert.equal(breaker.allows(), false, 'the probe runs first');
  await settle();
  assert.deepEqual([breaker.state, breaker.allows(), breaker.allows()], ['half-open', true, false], 'one trial call, not two');
  breaker.inconclusive();
  assert.equal(breaker.allows(), true, 'a trial that said nothing lets another one try');
  breaker.failure();
  assert.equal(breaker.state, 'open', 'a failed trial reopens');
  now += 100;
  breaker.allows();
  await settle();
  assert.equal(breaker.allows(), true);
  breaker.success();
  assert.deepEqual([breaker.state, breaker.allows()], ['closed', true], 'a successful trial closes');
});
