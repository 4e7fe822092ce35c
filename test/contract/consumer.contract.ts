/**
 * The consumer loop's part of the queue contract, run against every backend by
 * runQueueContract: draining, failing, retrying and stopping against a real queue.
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startConsumer, type Consumer, type ConsumerOptions } from '../../src/queue/index.js';
import type { ClaimedTask, DurableQueue, Outcome } from '../../src/queue/types.js';
import { CalcError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { eventually, newTask, settle, type QueueHarness } from './harness.js';

class Retryable extends Error {}

export function runConsumerContract(harness: () => QueueHarness): void {
  describe('startConsumer', () => {
    const running: Consumer[] = [];
    afterEach(async () => {
      await Promise.all(running.splice(0).map((c) => c.stop()));
    });

    const start = (queue: DurableQueue, name: string, handler: ConsumerOptions['handler'], extra: Partial<ConsumerOptions> = {}) => {
      const consumer = startConsumer({
        queue,
        operation: 'add',
        consumer: name,
        handler,
        logger: silentLogger(),
        leaseMs: 60_000,
        blockMs: 200,
        isRetryable: (error) => error instanceof Retryable,
        retryBaseMs: 20,
        ...extra,
      });
      running.push(consumer);
      return consumer;
    };
    const add = (task: ClaimedTask): Outcome => ({ ok: true, result: task.num1! + task.num2! });
    const ticketOf = (queue: DurableQueue, id: string) => queue.getTicket('alice', id);

    test('when two consumers drain a backlog of 2,000 tasks, then every ticket is completed exactly once', async () => {
      const h = harness();
      const producer = h.open();
      const tasks = Array.from({ length: 2000 }, () => newTask('add'));
      for (let i = 0; i < tasks.length; i += 200) await Promise.all(tasks.slice(i, i + 200).map((t) => producer.enqueue(t)));
      const handled = new Map<string, number>();
      const handler = (task: ClaimedTask) => {
        handled.set(task.id, (handled.get(task.id) ?? 0) + 1);
        return add(task);
      };
      start(h.open(), 'drain-1', handler, { concurrency: 64 });
      start(h.open(), 'drain-2', handler, { concurrency: 64 });
      await eventually(async () => ((await producer.stats(['add'])).add?.depth === 0 ? true : undefined), 'the backlog to drain', 30_000);
      assert.equal(handled.size, tasks.length);
      assert.ok([...handled.values()].every((n) => n === 1), 'a task was handled twice');
      for (const task of tasks.filter((_, i) => i % 100 === 0)) {
        const ticket = await ticketOf(producer, task.id);
        assert.deepEqual([ticket?.status, ticket?.result], ['done', task.num1! + task.num2!]);
      }
      assert.equal((await producer.takeCompleted('alice', 5000)).length, tasks.length);
    });

    test('when handlers are slow, then at most `concurrency` run at once, and the second half is claimed while the first still runs', async () => {
      const h = harness();
      const q = h.open();
      const tasks = Array.from({ length: 40 }, () => newTask('add'));
      await Promise.all(tasks.map((t) => q.enqueue(t)));
      let running = 0;
      let most = 0;
      const gates: Array<() => void> = [];
      start(q, 'bounded', async (task) => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        return add(task);
      }, { concurrency: 8 });
      // Both halves are claimed and held although no handler has finished.
      await eventually(() => (running === 8 ? true : undefined), 'eight handlers to run at once', 10_000);
      const release = setInterval(() => gates.splice(0).forEach((open) => open()), 5);
      try {
        await eventually(async () => ((await q.stats(['add'])).add?.depth === 0 ? true : undefined), 'the backlog to drain', 20_000);
      } finally {
        clearInterval(release);
      }
      assert.equal(most, 8, 'never more than the concurrency at once');
    });

    test('when the handler throws, then a CalcError keeps its code and anything else becomes INTERNAL', async () => {
      const h = harness();
      const q = h.open();
      const domain = newTask('add', { num1: 1 });
      const bug = newTask('add', { num1: 2 });
      await q.enqueue(domain);
      await q.enqueue(bug);
      start(q, 'failing', (task) => {
        if (task.id === domain.id) throw new CalcError('DOMAIN_ERROR', 'result is not finite');
        throw new TypeError('secret internals');
      });
      const failed = await eventually(async () => {
        const both = await Promise.all([ticketOf(q, domain.id), ticketOf(q, bug.id)]);
        return both.every((t) => t?.status === 'failed') ? both : undefined;
      }, 'both tickets to fail');
      assert.deepEqual(failed[0]?.error, { code: 'DOMAIN_ERROR', message: 'result is not finite' });
      assert.equal(failed[1]?.error?.code, 'INTERNAL');
      assert.doesNotMatch(failed[1]?.error?.message ?? '', /secret/);
    });

    test('when the handler fails with UNAVAILABLE that is not retried (its budget ran out), then the ticket carries DEADLINE_EXCEEDED, never UNAVAILABLE', async () => {
      const h = harness();
      const q = h.open();
      const task = newTask('add');
      await q.enqueue(task);
      start(q, 'out-of-time', () => {
        throw new CalcError('UNAVAILABLE', 'no time left for the call to multiply');
      });
      const ticket = await eventually(async () => {
        const read = await ticketOf(q, task.id);
        return read?.status === 'failed' ? read : undefined;
      }, 'the ticket to fail');
      assert.equal(ticket.error?.code, 'DEADLINE_EXCEEDED');
      assert.match(ticket.error?.message ?? '', /no time left/);
    });

    test('when a task takes several leases to compute, then its consumer keeps the lease and no other consumer computes it again', async () => {
      const h = harness();
      const q = h.open();
      const task = newTask('add');
      await q.enqueue(task);
      // The injected clock runs with real time here, so a lease of 1.2 s really passes 3 times
      // (long enough that a loaded machine's pauses do not look like a dead consumer).
      const leaseMs = 1200;
      let runs = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const first = new Promise<void>((resolve) => (started = resolve));
      start(q, 'slow', async (claimed) => {
        runs += 1;
        started();
        await gate;
        return add(claimed);
      }, { leaseMs });
      await first;
      start(h.open(), 'thief', (claimed) => {
        runs += 1;
        return add(claimed);
      }, { leaseMs });
      await new Promise((r) => setTimeout(r, leaseMs * 3)); // the thing under test is time passing
      release();
      await eventually(async () => ((await ticketOf(q, task.id))?.status === 'done' ? true : undefined), 'the slow task to complete');
      assert.equal(runs, 1, 'the task was computed again while its consumer was still working on it');
    });

    test('when the handler fails with a retryable error, then the task is retried later without counting a delivery', async () => {
      const h = harness();
      const q = h.open();
      const task = newTask('add', { num1: 40 });
      await q.enqueue(task);
      const seen: { deliveries: number; retries: number | undefined; at: number }[] = [];
      start(q, 'retrying', (claimed) => {
        seen.push({ deliveries: claimed.deliveries, retries: claimed.retries, at: Date.now() });
        if (seen.length < 3) throw new Retryable('upstream unavailable');
        return add(claimed);
      });
      await eventually(async () => ((await ticketOf(q, task.id))?.status === 'done' ? true : undefined), 'the retried task to complete');
      assert.deepEqual(seen.map((s) => [s.deliveries, s.retries]), [[1, 0], [1, 1], [1, 2]]);
      // Backoff doubles: 20 ms, then 40 ms (Redis keeps its own time; SQLite follows real time here).
      assert.ok(seen[2]!.at - seen[1]!.at >= 35, `second retry after ${seen[2]!.at - seen[1]!.at} ms`);
      assert.equal((await ticketOf(q, task.id))?.result, 42);
    });

    test('when stopped with a task in flight, then stop waits for it to finish and be completed', async () => {
      const h = harness();
      const q = h.open();
      const task = newTask();
      await q.enqueue(task);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const handlerStarted = new Promise<void>((resolve) => (started = resolve));
      const consumer = start(q, 'stopping', async (claimed) => {
        started();
        await gate;
        return add(claimed);
      });
      await handlerStarted;
      let stopped = false;
      const stopping = consumer.stop().then(() => (stopped = true));
      await settle(20);
      assert.equal(stopped, false, 'stop resolved while a task was in flight');
      release();
      await stopping;
      assert.equal((await ticketOf(q, task.id))?.status, 'done');
    });
  });
}
