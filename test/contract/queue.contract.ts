/**
 * The one contract every DurableQueue backend passes: the guarantees written in
 * src/queue/types.ts, each as a test. Backends differ only in how time passes (see
 * QueueHarness.serverTime); the consumer loop's part of the contract is in consumer.contract.ts.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEAD_LETTER_CODE } from '../../src/queue/index.js';
import type { ClaimedTask, DurableQueue } from '../../src/queue/types.js';
import { runConsumerContract } from './consumer.contract.js';
import { runDeliveryContract } from './delivery.contract.js';
import { eventually, newTask, settle, type HarnessFactory, type QueueHarness } from './harness.js';

const now = { leaseMs: 60_000, blockMs: 0 };

export function runQueueContract(name: string, factory: HarnessFactory): void {
  describe(`DurableQueue contract: ${name}`, () => {
    let h: QueueHarness;
    let q: DurableQueue;
    beforeEach(async () => {
      h = await factory({ maxDeliveries: 2 });
      q = h.open();
    });
    afterEach(() => h.close());

    /** A lease short enough to wait out for real when the backend keeps time itself. */
    const shortLease = () => (h.serverTime ? 100 : 60_000);
    const expireLease = (leaseMs: number) => h.clock.advance(leaseMs + 1);
    /** Claims until something comes back (immediately where the injected clock rules). */
    const claimAgain = (queue: DurableQueue, consumer: string, leaseMs: number) =>
      eventually(async () => {
        const tasks = await queue.claim('add', consumer, 10, { leaseMs, blockMs: 0 });
        return tasks.length > 0 ? tasks : undefined;
      }, `${consumer} to reclaim a task`);

    test('when a task is enqueued, then its ticket reads back queued for its client only', async () => {
      const task = newTask('add', { num1: 6, num2: 7 });
      const ticket = await q.enqueue(task);
      assert.equal(ticket.status, 'queued');
      const read = await q.getTicket('alice', task.id);
      assert.deepEqual(read, ticket);
      assert.equal(read?.operation, 'add');
      assert.equal(read?.num1, 6);
      assert.equal(await q.getTicket('bob', task.id), undefined);
      assert.equal(await q.getTicket('alice', 'no-such-id'), undefined);
    });

    test('when the same task id is enqueued twice, then it is stored once', async () => {
      const task = newTask();
      const first = await q.enqueue(task);
      const second = await q.enqueue({ ...task, num1: 99 });
      assert.deepEqual(second, first);
      const claimed = await q.claim('add', 'c1', 10, now);
      assert.equal(claimed.length, 1);
    });

    test('when a consumer claims an operation, then it gets only that operation and the others stay untouched', async () => {
      const add = newTask('add');
      const evaluate = newTask('evaluate', { num1: undefined, num2: undefined, expression: '(6+7)*3' });
      await q.enqueue(add);
      await q.enqueue(evaluate);
      const claimed = await q.claim('add', 'c1', 10, now);
      assert.deepEqual(claimed.map((t) => t.id), [add.id]);
      assert.equal(claimed[0]!.deliveries, 1);
      assert.equal(claimed[0]!.requestId, add.requestId);
      const stats = await q.stats(['add', 'evaluate']);
      assert.deepEqual(stats.evaluate && { depth: stats.evaluate.depth, inFlight: stats.evaluate.inFlight }, { depth: 1, inFlight: 0 });
      const other = await q.claim('evaluate', 'c1', 10, now);
      assert.equal(other[0]?.expression, '(6+7)*3');
    });

    test('when tasks are completed, then tickets are done or failed and each is taken exactly once', async () => {
      const ok = newTask('divide', { num1: 1, num2: 3 });
      const bad = newTask('divide', { num1: 1, num2: 0 });
      await q.enqueue(ok);
      await q.enqueue(bad);
      const [a, b] = await q.claim('divide', 'c1', 10, now);
      await q.complete('divide', [
        { task: a!, outcome: { ok: true, result: 1 / 3 } },
        { task: b!, outcome: { ok: false, error: { code: 'DOMAIN_ERROR', message: 'division by zero' } } },
      ]);
      const done = await q.getTicket('alice', ok.id);
      assert.equal(done?.status, 'done');
      assert.equal(done?.result, 1 / 3);
      assert.ok(done?.completedAt !== undefined);
      const failed = await q.getTicket('alice', bad.id);
      assert.deepEqual([failed?.status, failed?.error], ['failed', { code: 'DOMAIN_ERROR', message: 'division by zero' }]);
      assert.deepEqual(await q.takeCompleted('bob', 10), []);
      const taken = await q.takeCompleted('alice', 10);
      assert.deepEqual(taken.map((t) => t.id).sort(), [ok.id, bad.id].sort());
      assert.deepEqual(await q.takeCompleted('alice', 10), []);
      assert.equal((await q.stats(['divide'])).divide?.depth, 0);
    });

    test('when a task is completed twice, then the first outcome stays and it is pending once', async () => {
      const task = newTask();
      await q.enqueue(task);
      const [claimed] = await q.claim('add', 'c1', 10, now);
      await q.complete('add', [{ task: claimed!, outcome: { ok: true, result: 1 } }]);
      await q.complete('add', [{ task: claimed!, outcome: { ok: true, result: 2 } }]);
      assert.equal((await q.getTicket('alice', task.id))?.result, 1);
      assert.equal((await q.takeCompleted('alice', 10)).length, 1);
      assert.deepEqual(await q.takeCompleted('alice', 10), []);
    });

    test('when two callers take completed results at once, then none is given twice and none is lost', async () => {
      const tasks = Array.from({ length: 50 }, () => newTask());
      for (const task of tasks) await q.enqueue(task);
      const claimed = await q.claim('add', 'c1', 50, now);
      await q.complete('add', claimed.map((task) => ({ task, outcome: { ok: true as const, result: 0 } })));
      const other = h.open();
      const [first, second] = await Promise.all([q.takeCompleted('alice', 30), other.takeCompleted('alice', 30)]);
      const ids = [...first!, ...second!].map((t) => t.id);
      assert.equal(ids.length, 50);
      assert.deepEqual(new Set(ids), new Set(tasks.map((t) => t.id)));
    });

    test('when an idempotency key is reserved, then it binds to the first id, per client', async () => {
      assert.equal(await q.reserveKey('alice', 'k1', 'id-1'), undefined);
      assert.equal(await q.reserveKey('alice', 'k1', 'id-2'), 'id-1');
      assert.equal(await q.reserveKey('alice', 'k1', 'id-1'), undefined);
      assert.equal(await q.reserveKey('bob', 'k1', 'id-3'), undefined);
      assert.equal(await q.reserveKey('alice', 'k2', 'id-4'), undefined);
    });

    test('when a ticket answered directly is saved, then it reads back and is never pending', async () => {
      const ticket = { id: 'direct-1', client: 'alice', status: 'done' as const, operation: 'multiply' as const, num1: 6, num2: 7, result: 42, createdAt: h.clock.now(), completedAt: h.clock.now() };
      await q.saveTicket(ticket);
      assert.deepEqual(await q.getTicket('alice', 'direct-1'), ticket);
      assert.equal(await q.getTicket('bob', 'direct-1'), undefined);
      assert.deepEqual(await q.takeCompleted('alice', 10), []);
    });

    test('when the result TTL has passed, then tickets and keys are gone', async () => {
      const ttl = await factory({ resultTtlS: 1 });
      try {
        const queue = ttl.open();
        await queue.saveTicket({ id: 'short-lived', client: 'alice', status: 'done', operation: 'add', result: 1, createdAt: ttl.clock.now() });
        assert.equal(await queue.reserveKey('alice', 'k', 'short-lived'), undefined);
        ttl.clock.advance(1500);
        await eventually(async () => ((await queue.getTicket('alice', 'short-lived')) ? undefined : true), 'the ticket to expire');
        await eventually(async () => ((await queue.reserveKey('alice', 'k', 'next')) === undefined ? true : undefined), 'the key to expire');
      } finally {
        await ttl.close();
      }
    });

    test('when a lease expires, then another consumer reclaims the task and it is completed exactly once', async () => {
      const leaseMs = shortLease();
      const task = newTask();
      await q.enqueue(task);
      const [first] = await q.claim('add', 'dead-consumer', 10, { leaseMs, blockMs: 0 });
      assert.deepEqual(await q.claim('add', 'other', 10, { leaseMs, blockMs: 0 }), []);
      expireLease(leaseMs);
      const [again] = await claimAgain(h.open(), 'other', leaseMs);
      assert.equal(again!.id, task.id);
      assert.equal(again!.deliveries, 2);
      await q.complete('add', [{ task: again!, outcome: { ok: true, result: 8 } }]);
      await q.complete('add', [{ task: first!, outcome: { ok: true, result: 9 } }]); // the late, first consumer
      assert.equal((await q.getTicket('alice', task.id))?.result, 8);
      assert.equal((await q.takeCompleted('alice', 10)).length, 1);
      assert.equal((await q.stats(['add'])).add?.depth, 0);
    });

    test('when a completed ticket is read (also while waiting), then it is still delivered once through takeCompleted', async () => {
      const task = newTask();
      await q.enqueue(task);
      const [claimed] = await q.claim('add', 'c1', 10, now);
      await q.complete('add', [{ task: claimed!, outcome: { ok: true, result: 3 } }]);
      for (let i = 0; i < 3; i++) assert.equal((await q.getTicket('alice', task.id))?.status, 'done');
      assert.deepEqual((await q.takeCompleted('alice', 10)).map((t) => t.id), [task.id], 'reads never consume a delivery');
      assert.deepEqual(await q.takeCompleted('alice', 10), [], 'and it is delivered once');
      assert.equal((await q.getTicket('alice', task.id))?.result, 3, 'still readable after delivery');
    });

    test('when a lease is extended by its holder, then it is not reclaimed; when by another consumer, then nothing changes', async () => {
      const leaseMs = 1000;
      // Time passes for real where Redis keeps it, by a jump of the injected clock elsewhere.
      const pass = async (ms: number) => (h.serverTime ? new Promise((r) => setTimeout(r, ms)) : h.clock.advance(ms));
      const task = newTask();
      await q.enqueue(task);
      const [held] = await q.claim('add', 'c1', 10, { leaseMs, blockMs: 0 });
      await pass(600);
      assert.equal(await q.extend('add', 'c1', [held!], leaseMs), 1);
      assert.equal(await q.extend('add', 'c2', [held!], leaseMs), 0, 'only the holder extends');
      await pass(600);
      assert.deepEqual(await q.claim('add', 'c2', 10, { leaseMs, blockMs: 0 }), [], 'an extended lease is not reclaimed');
      await pass(leaseMs + 1);
      const [reclaimed] = await claimAgain(q, 'c2', leaseMs);
      assert.equal(reclaimed!.id, task.id, 'once no longer extended, it is reclaimed');
      assert.equal(await q.extend('add', 'c1', [held!], leaseMs), 0, 'a lost lease cannot be extended again');
    });

    test('when an idempotency key is taken over, then exactly one of many concurrent takeovers wins', async () => {
      assert.equal(await q.reserveKey('alice', 'k1', 'dead-holder'), undefined);
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => q.takeOverKey('alice', 'k1', 'dead-holder', `new-${i}`)));
      assert.equal(wins.filter(Boolean).length, 1);
      const winner = `new-${wins.indexOf(true)}`;
      assert.equal(await q.reserveKey('alice', 'k1', 'someone-else'), winner);
      assert.equal(await q.takeOverKey('alice', 'k1', 'dead-holder', 'late'), false, 'a takeover of a holder already replaced fails');
    });

    test('when a task is delivered more than maxDeliveries times, then it is dead-lettered and its ticket fails', async () => {
      const leaseMs = shortLease();
      const task = newTask();
      await q.enqueue(task);
      await q.claim('add', 'c1', 10, { leaseMs, blockMs: 0 });
      expireLease(leaseMs);
      const [second] = await claimAgain(q, 'c2', leaseMs);
      assert.equal(second!.deliveries, 2);
      expireLease(leaseMs);
      const ticket = await eventually(async () => {
        assert.deepEqual(await q.claim('add', 'c3', 10, { leaseMs, blockMs: 0 }), []);
        const read = await q.getTicket('alice', task.id);
        return read?.status === 'failed' ? read : undefined;
      }, 'the task to be dead-lettered');
      assert.equal(ticket.error?.code, DEAD_LETTER_CODE);
      assert.equal(DEAD_LETTER_CODE, 'DEAD_LETTER', 'a dead-lettered ticket carries its own code');
      assert.match(ticket.error?.message ?? '', /2 deliveries/);
      assert.deepEqual((await q.takeCompleted('alice', 10)).map((t) => t.id), [task.id]);
      const stats = (await q.stats(['add'])).add;
      assert.deepEqual([stats?.depth, stats?.inFlight, stats?.deadLetters], [0, 0, 1]);
    });

    test('when more tasks are dead-lettered than the cap, then only as many dead letters as the cap are kept', async () => {
      await h.close();
      h = await factory({ maxDeliveries: 2, deadLetterCap: 2 });
      q = h.open();
      const leaseMs = shortLease();
      const tasks = [newTask(), newTask(), newTask()];
      for (const task of tasks) await q.enqueue(task);
      await eventually(async () => {
        expireLease(leaseMs);
        await q.claim('add', 'c1', 10, { leaseMs, blockMs: 0 });
        const tickets = await Promise.all(tasks.map((task) => q.getTicket('alice', task.id)));
        return tickets.every((t) => t?.status === 'failed') ? true : undefined;
      }, 'the three tasks to be dead-lettered');
      const stats = (await q.stats(['add'])).add;
      assert.deepEqual([stats?.depth, stats?.inFlight, stats?.deadLetters], [0, 0, 2]);
    });

    test('when a task is given back with retryLater, then it waits the delay and the delivery is not counted', async () => {
      const delayMs = h.serverTime ? 300 : 5000;
      const task = newTask();
      await q.enqueue(task);
      const [claimed] = await q.claim('add', 'c1', 10, now);
      const givenBack = Date.now();
      await q.retryLater('add', claimed!, delayMs);
      assert.deepEqual(await q.claim('add', 'c2', 10, now), []);
      const stats = (await q.stats(['add'])).add;
      assert.deepEqual([stats?.depth, stats?.inFlight], [1, 0]);
      h.clock.advance(delayMs);
      const [again] = await claimAgain(q, 'c2', 60_000);
      if (h.serverTime) assert.ok(Date.now() - givenBack >= delayMs - 5, 'claimed again before the delay');
      assert.deepEqual([again!.id, again!.deliveries, again!.retries], [task.id, 1, 1]);
    });

    test('when a consumer that lost its lease gives the task back, then nothing changes', async () => {
      const leaseMs = shortLease();
      await q.enqueue(newTask());
      const [stale] = await q.claim('add', 'c1', 10, { leaseMs, blockMs: 0 });
      expireLease(leaseMs);
      const [current] = await claimAgain(q, 'c2', leaseMs);
      await q.retryLater('add', stale!, 0);
      await settle();
      assert.deepEqual(await q.claim('add', 'c3', 10, now), []);
      assert.equal((await q.stats(['add'])).add?.inFlight, 1);
      await q.complete('add', [{ task: current!, outcome: { ok: true, result: 1 } }]);
    });

    test('when tasks wait and one is claimed, then stats report depth, in flight, oldest age and dead letters', async () => {
      assert.deepEqual((await q.stats(['add'])).add, { depth: 0, inFlight: 0, oldestAgeMs: 0, deadLetters: 0 });
      for (let i = 0; i < 3; i++) await q.enqueue(newTask());
      h.clock.advance(5000);
      await q.claim('add', 'c1', 1, now);
      const stats = await q.stats(['add', 'subtract']);
      assert.equal(stats.add?.depth, 3);
      assert.equal(stats.add?.inFlight, 1);
      assert.ok(stats.add!.oldestAgeMs >= 5000 && stats.add!.oldestAgeMs < 15_000, `oldest ${stats.add?.oldestAgeMs}`);
      assert.deepEqual(stats.subtract, { depth: 0, inFlight: 0, oldestAgeMs: 0, deadLetters: 0 });
    });

    test('when nothing is ready, then a blocking claim waits and takes a task enqueued meanwhile', async () => {
      const other = h.open();
      const claiming = q.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 3000 });
      await settle();
      const task = newTask();
      await other.enqueue(task);
      const claimed: ClaimedTask[] = await claiming;
      assert.deepEqual(claimed.map((t) => t.id), [task.id]);
    });

    test('when a blocking claim is aborted, then it resolves at once with nothing', async () => {
      const abort = new AbortController();
      const claiming = q.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 30_000, signal: abort.signal });
      await settle();
      const started = Date.now();
      abort.abort();
      assert.deepEqual(await claiming, []);
      assert.ok(Date.now() - started < 2000);
    });

    test('when the queue is closed, then calls reject with UNAVAILABLE', async () => {
      const queue = h.open();
      await queue.ping();
      await queue.close();
      await assert.rejects(queue.enqueue(newTask()), { code: 'UNAVAILABLE' });
      await assert.rejects(queue.ping(), { code: 'UNAVAILABLE' });
    });

    runConsumerContract(() => h);
    runDeliveryContract(() => h, () => q);
  });
}
