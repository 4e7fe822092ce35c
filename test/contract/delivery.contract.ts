/**
 * The delivery channels' part of the queue contract (#15), run against every backend by
 * runQueueContract: the event stream's log, the history, webhooks and dead letters for operators.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DurableQueue, NewTask, WebhookClaimOptions } from '../../src/queue/types.js';
import { eventually, newTask, type QueueHarness } from './harness.js';

const now = { leaseMs: 60_000, blockMs: 0 };

/** Claims and completes these tasks of `add` with num1 + num2. */
async function drain(q: DurableQueue, tasks: readonly NewTask[]): Promise<void> {
  const claimed = await q.claim('add', 'worker', tasks.length, now);
  assert.equal(claimed.length, tasks.length);
  await q.complete('add', claimed.map((task) => ({ task, outcome: { ok: true as const, result: task.num1! + task.num2! } })));
}

export function runDeliveryContract(harness: () => QueueHarness, queue: () => DurableQueue): void {
  describe('delivery channels', () => {
    test('when completed tickets are logged, then the log replays them after a cursor, resumes exactly behind each, and takeCompleted gets none of them', async () => {
      const q = queue();
      const start = await q.logCursor('alice');
      const tasks = [newTask(), newTask(), newTask()];
      for (const task of tasks) await q.enqueue(task);
      // Another operation: a partitioned queue claims across its tags in no global order.
      await q.enqueue(newTask('subtract', { client: 'bob' }));
      await drain(q, tasks);
      assert.equal(await q.logCompleted('alice', 100), 3);
      assert.deepEqual(await q.takeCompleted('alice', 100), []);
      const logged = await q.readLog('alice', start, 100);
      // (One log: completion order. Partitioned, one log per tag: each tag's in order.)
      assert.deepEqual(logged.map((e) => e.ticket.id).sort(), tasks.map((t) => t.id).sort());
      assert.deepEqual(logged.map((e) => e.ticket.status), ['done', 'done', 'done']);
      // Resuming after the first cursor gives the rest; a second instance reads the same log.
      const other = harness().open();
      assert.deepEqual((await other.readLog('alice', logged[0]!.cursor, 100)).map((e) => e.ticket.id), logged.slice(1).map((e) => e.ticket.id));
      assert.deepEqual((await other.readLog('alice', logged[1]!.cursor, 1)).map((e) => e.ticket.id), [logged[2]!.ticket.id]);
      assert.equal(await other.logCursor('alice'), logged[2]!.cursor);
      assert.deepEqual(await q.readLog('bob', await q.logCursor('bob'), 100), []);
      await assert.rejects(q.readLog('alice', 'not a cursor', 10), { code: 'INVALID_ARGUMENT' });
    });

    test('when the log and takeCompleted race for completed tickets, then each ticket goes to exactly one of them', async () => {
      const q = queue();
      const other = harness().open();
      const start = await q.logCursor('alice');
      const tasks = Array.from({ length: 20 }, () => newTask());
      for (const task of tasks) await q.enqueue(task);
      const claimed = await q.claim('add', 'worker', 20, now);
      await q.complete('add', claimed.map((task) => ({ task, outcome: { ok: true as const, result: 1 } })));
      const taken: string[] = [];
      await Promise.all([
        (async () => { for (let i = 0; i < 10; i++) await q.logCompleted('alice', 2); })(),
        (async () => { for (let i = 0; i < 10; i++) taken.push(...(await other.takeCompleted('alice', 2)).map((t) => t.id)); })(),
      ]);
      const logged = (await q.readLog('alice', start, 100)).map((e) => e.ticket.id);
      assert.equal(logged.length + taken.length, 20);
      assert.deepEqual(new Set([...logged, ...taken]), new Set(tasks.map((t) => t.id)));
    });

    test('when a client pages through its history, then it gets every ticket once, newest first, filtered as asked, and never another client\'s', async () => {
      const q = queue();
      const tasks: NewTask[] = [];
      for (let i = 0; i < 7; i++) {
        tasks.push(newTask(i % 2 ? 'add' : 'multiply'));
        await q.enqueue(tasks[i]!);
        harness().clock.advance(1);
      }
      await q.enqueue(newTask('add', { client: 'bob' }));
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await q.listTickets('alice', { limit: 3, cursor });
        assert.ok(page.tickets.length <= 3);
        seen.push(...page.tickets.map((t) => t.id));
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      assert.deepEqual(seen, tasks.map((t) => t.id).reverse());
      const adds = await q.listTickets('alice', { limit: 10, operation: 'add' });
      assert.deepEqual(adds.tickets.map((t) => t.id), tasks.filter((t) => t.operation === 'add').map((t) => t.id).reverse());
      assert.equal(adds.nextCursor, undefined);
      assert.deepEqual((await q.listTickets('alice', { limit: 10, status: 'done' })).tickets, []);
      assert.deepEqual((await q.listTickets('bob', { limit: 10 })).tickets.map((t) => t.client), ['bob']);
      // A retried enqueue of the same id is listed once.
      await q.enqueue(tasks[0]!);
      assert.equal((await q.listTickets('alice', { limit: 100 })).tickets.length, 7);
      await assert.rejects(q.listTickets('alice', { limit: 3, cursor: 'bogus!' }), { code: 'INVALID_ARGUMENT' });
    });

    test('when a ticket with a callback completes, then it is a webhook delivery for one gateway, handed out again until acknowledged, and not pending', async () => {
      const h = harness();
      const q = queue();
      const other = h.open();
      const options: WebhookClaimOptions = { maxAttempts: 5, retryMs: 50, attemptMs: 50 };
      const task = newTask('add', { callback: 'http://127.0.0.1:9/hook' });
      await q.enqueue(task);
      assert.equal((await q.getTicket('alice', task.id))?.callback, task.callback);
      await drain(q, [task]);
      assert.deepEqual(await q.takeCompleted('alice', 10), []);
      const [first, ...none] = [...(await q.claimWebhooks('gw1', 10, options)), ...(await other.claimWebhooks('gw2', 10, options))];
      assert.deepEqual(none, []);
      assert.deepEqual([first?.ticketId, first?.client, first?.url, first?.attempt], [task.id, 'alice', task.callback, 1]);
      assert.deepEqual((await q.webhookStats()).pending, 1);
      // Not acknowledged (the POST failed): handed out again after its backoff, same delivery id.
      const again = await eventually(async () => {
        h.clock.advance(100);
        const got = await other.claimWebhooks('gw2', 10, options);
        return got.length > 0 ? got : undefined;
      }, 'the delivery to be handed out again');
      assert.deepEqual([again[0]?.id, again[0]?.attempt], [first!.id, 2]);
      await other.ackWebhook(again[0]!);
      assert.deepEqual(await q.webhookStats(), { pending: 0, deadLetters: 0 });
      h.clock.advance(10_000);
      assert.deepEqual(await q.claimWebhooks('gw1', 10, options), []);
    });

    test('when a webhook delivery fails maxAttempts times, then it becomes a webhook dead letter', async () => {
      const h = harness();
      const q = queue();
      const options: WebhookClaimOptions = { maxAttempts: 2, retryMs: 30, attemptMs: 30 };
      const task = newTask('add', { callback: 'http://127.0.0.1:9/hook' });
      await q.enqueue(task);
      await drain(q, [task]);
      const attempts: number[] = [];
      await eventually(async () => {
        h.clock.advance(100);
        attempts.push(...(await q.claimWebhooks('gw1', 10, options)).map((d) => d.attempt));
        const stats = await q.webhookStats();
        return stats.deadLetters === 1 ? stats : undefined;
      }, 'the webhook to be dead-lettered');
      assert.deepEqual(attempts, [1, 2]);
      assert.deepEqual(await q.webhookStats(), { pending: 0, deadLetters: 1 });
    });

    test('when an operator lists, replays and purges dead letters, then a replay is delivered again under the same ticket id and a purge removes it', async () => {
      const h = harness();
      const q = queue();
      const leaseMs = h.serverTime ? 100 : 60_000;
      const tasks = [newTask('add', { num1: 6, num2: 7 }), newTask('add')];
      for (const task of tasks) await q.enqueue(task);
      await eventually(async () => {
        h.clock.advance(leaseMs + 1);
        await q.claim('add', 'crashing', 10, { leaseMs, blockMs: 0 });
        const tickets = await Promise.all(tasks.map((t) => q.getTicket('alice', t.id)));
        return tickets.every((t) => t?.status === 'failed') ? true : undefined;
      }, 'both tasks to be dead-lettered');
      const letters = await q.deadLetters(['add', 'subtract'], 10);
      assert.deepEqual(new Set(letters.map((l) => l.id)), new Set(tasks.map((t) => t.id)));
      const first = letters.find((l) => l.id === tasks[0]!.id)!;
      assert.deepEqual([first.operation, first.client, first.deliveries, first.task.num1], ['add', 'alice', 2, 6]);
      assert.match(first.reason, /2 deliveries/);
      assert.ok(first.deadAt > 0);
      assert.deepEqual(await q.deadLetters(['subtract'], 10), []);

      assert.equal(await q.replayDeadLetter(tasks[0]!.id), true);
      assert.equal(await q.replayDeadLetter(tasks[0]!.id), false, 'a dead letter is replayed once');
      assert.equal((await q.getTicket('alice', tasks[0]!.id))?.status, 'queued');
      const [again] = await q.claim('add', 'healthy', 10, now);
      assert.equal(again?.id, tasks[0]!.id);
      await q.complete('add', [{ task: again!, outcome: { ok: true, result: 13 } }]);
      const delivered = await q.takeCompleted('alice', 10);
      assert.deepEqual(delivered.map((t) => [t.id, t.status, t.result]), [[tasks[1]!.id, 'failed', undefined], [tasks[0]!.id, 'done', 13]]);

      assert.equal(await q.purgeDeadLetter(tasks[1]!.id), true);
      assert.equal(await q.purgeDeadLetter(tasks[1]!.id), false);
      assert.deepEqual(await q.deadLetters(['add'], 10), []);
      assert.equal((await q.stats(['add'])).add?.deadLetters, 0);
      assert.equal(await q.replayDeadLetter('no-such-id'), false);
    });
  });
}
