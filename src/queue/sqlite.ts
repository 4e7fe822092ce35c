/**
 * The embedded backend: one SQLite file shared by the processes of one machine (WAL mode).
 * Every write is one IMMEDIATE transaction: it takes the write lock up front, so two processes
 * never deadlock upgrading a read to a write, and busy_timeout makes them queue for it instead
 * of failing. better-sqlite3 is synchronous; the async API keeps the interface of the Redis backend.
 * Leases and retry delays use the injected clock; waiting for work (blockMs) uses real time.
 */
import type { ServiceOp } from '../shared/operations.js';
import { DEAD_LETTER_CODE, closedError, deadLetterCap, deadLetterReason, toUnavailable, undecodableReason } from './errors.js';
import { sqliteDeadLetters } from './sqlite-dead-letters.js';
import { sqliteDelivery } from './sqlite-delivery.js';
import { openDatabase, ticketFromRow, type TaskRow, type TicketRow } from './sqlite-schema.js';
import type { ClaimOptions, ClaimedTask, Completion, DurableQueue, NewTask, OperationStats, QueueOptions, Ticket } from './types.js';

/** Other processes' enqueues are only seen by polling; same-process ones wake a waiting claim at once. */
const POLL_MS = 25;
const PURGE_EVERY_MS = 60_000;
const PURGE_BATCH = 1000;

export function createSqliteQueue(dataDir: string, options: QueueOptions): DurableQueue {
  const db = openDatabase(dataDir);
  const now = options.now ?? Date.now;
  const ttlMs = options.resultTtlS * 1000;
  const deadLettersKept = deadLetterCap(options.deadLetterCap);
  const q = {
    insertTicket: db.prepare(
      `INSERT INTO tickets (id, client, status, operation, num1, num2, expression, callback, created_at)
       VALUES (@id, @client, 'queued', @operation, @num1, @num2, @expression, @callback, @createdAt) ON CONFLICT (id) DO NOTHING`,
    ),
    insertTask: db.prepare('INSERT INTO tasks (ticket_id, operation, payload, enqueued_at) VALUES (?, ?, ?, ?)'),
    saveTicket: db.prepare(
      `INSERT OR REPLACE INTO tickets (id, client, status, operation, num1, num2, expression, result, error_code,
         error_message, created_at, completed_at, expires_at, delivered, callback)
       VALUES (@id, @client, @status, @operation, @num1, @num2, @expression, @result, @errorCode,
         @errorMessage, @createdAt, @completedAt, @expiresAt, NULL, NULL)`,
    ),
    ticket: db.prepare<[string, number], TicketRow>('SELECT * FROM tickets WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)'),
    pending: db.prepare<[string, number, number], TicketRow>(
      'SELECT * FROM tickets WHERE client = ? AND delivered = 0 AND expires_at > ? ORDER BY completed_at, rowid LIMIT ?',
    ),
    markDelivered: db.prepare('UPDATE tickets SET delivered = 1 WHERE id = ?'),
    key: db.prepare<[string, string], { ticket_id: string; expires_at: number }>(
      'SELECT ticket_id, expires_at FROM idempotency_keys WHERE client = ? AND key = ?',
    ),
    putKey: db.prepare('INSERT OR REPLACE INTO idempotency_keys (client, key, ticket_id, expires_at) VALUES (?, ?, ?, ?)'),
    ready: db.prepare<[string, number], number>('SELECT 1 FROM tasks WHERE operation = ? AND lease_until <= ? LIMIT 1').pluck(),
    expired: db.prepare<[string, number, number], TaskRow>(
      'SELECT * FROM tasks WHERE operation = ? AND lease_until > 0 AND lease_until <= ? ORDER BY lease_until LIMIT ?',
    ),
    fresh: db.prepare<[string, number], TaskRow>('SELECT * FROM tasks WHERE operation = ? AND lease_until = 0 ORDER BY seq LIMIT ?'),
    lease: db.prepare('UPDATE tasks SET consumer = ?, lease_until = ?, deliveries = deliveries + 1, claim_no = claim_no + 1 WHERE seq = ?'),
    deadLetter: db.prepare(
      'INSERT INTO dead_letters (ticket_id, operation, payload, deliveries, reason, dead_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    // Keeps the newest `cap` of the operation (dead_letters_op orders an operation's rows by seq).
    trimDeadLetters: db.prepare<[string, string, number]>(
      `DELETE FROM dead_letters WHERE operation = ? AND seq <=
         (SELECT seq FROM dead_letters WHERE operation = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
    ),
    deleteTask: db.prepare('DELETE FROM tasks WHERE seq = ?'),
    deleteTaskOf: db.prepare('DELETE FROM tasks WHERE ticket_id = ?'),
    finish: db.prepare(
      `UPDATE tickets SET status = @status, result = @result, error_code = @errorCode, error_message = @errorMessage,
         completed_at = @at, expires_at = @expiresAt, delivered = 0
       WHERE id = @id AND status = 'queued'`,
    ),
    giveBack: db.prepare(
      `UPDATE tasks SET consumer = NULL, lease_until = ?, deliveries = deliveries - 1, retries = retries + 1
       WHERE seq = ? AND claim_no = ? AND consumer IS NOT NULL`,
    ),
    stats: db.prepare<[number, string], { depth: number; in_flight: number; oldest: number | null }>(
      `SELECT COUNT(*) AS depth, COALESCE(SUM(consumer IS NOT NULL AND lease_until > ?), 0) AS in_flight,
         MIN(enqueued_at) AS oldest FROM tasks WHERE operation = ?`,
    ),
    extend: db.prepare('UPDATE tasks SET lease_until = ? WHERE seq = ? AND claim_no = ? AND consumer = ?'),
    takeOver: db.prepare('UPDATE idempotency_keys SET ticket_id = ? WHERE client = ? AND key = ? AND ticket_id = ? AND expires_at > ?'),
    noteClaim: db.prepare('INSERT INTO claims (operation, last_claim_at) VALUES (?, ?) ON CONFLICT (operation) DO UPDATE SET last_claim_at = excluded.last_claim_at'),
    lastClaim: db.prepare<[string], number>('SELECT last_claim_at FROM claims WHERE operation = ?').pluck(),
    ping: db.prepare('SELECT 1'),
    deadLetters: db.prepare<[string], number>('SELECT COUNT(*) FROM dead_letters WHERE operation = ?').pluck(),
    purgeTickets: db.prepare(`DELETE FROM tickets WHERE rowid IN (SELECT rowid FROM tickets WHERE expires_at <= ? LIMIT ${PURGE_BATCH})`),
    purgeKeys: db.prepare(
      `DELETE FROM idempotency_keys WHERE (client, key) IN
         (SELECT client, key FROM idempotency_keys WHERE expires_at <= ? LIMIT ${PURGE_BATCH})`,
    ),
  };

  const delivery = sqliteDelivery(db, (step) => guard(step), { now, ttlMs });
  const { routeCompletion: _route, purge: _purge, ...channels } = delivery;

  const enqueueTx = db.transaction((task: NewTask, at: number): boolean => {
    const { id, client, requestId, operation, num1, num2, expression, callback } = task;
    const ticket = { id, client, operation, num1: num1 ?? null, num2: num2 ?? null, expression: expression ?? null, callback: callback ?? null, createdAt: at };
    if (q.insertTicket.run(ticket).changes === 0) return false;
    q.insertTask.run(id, operation, JSON.stringify({ id, client, requestId, operation, num1, num2, expression, callback }), at);
    return true;
  });

  /** A ticket that took its outcome now goes to its delivery channel: pending, or its webhook. */
  function fail(ticketId: string, code: string, message: string, at: number): void {
    const changed = q.finish.run({ id: ticketId, status: 'failed', result: null, errorCode: code, errorMessage: message, at, expiresAt: at + ttlMs }).changes;
    if (changed > 0) delivery.routeCompletion(ticketId);
  }

  const claimTx = db.transaction((op: ServiceOp, consumer: string, max: number, leaseMs: number): ClaimedTask[] => {
    const at = now();
    const claimed: ClaimedTask[] = [];
    const take = (row: TaskRow) => {
      let task: NewTask;
      try {
        task = decodeTask(row.payload);
      } catch (error) {
        // One bad row must not fail every claim of its operation: it goes to the dead letters.
        const reason = undecodableReason((error as Error).message);
        q.deadLetter.run(row.ticket_id, op, row.payload, row.deliveries, reason, at);
        q.deleteTask.run(row.seq);
        fail(row.ticket_id, DEAD_LETTER_CODE, reason, at);
        return;
      }
      q.lease.run(consumer, at + leaseMs, row.seq);
      claimed.push({
        ...task,
        enqueuedAt: row.enqueued_at,
        deliveries: row.deliveries + 1,
        retries: row.retries,
        receipt: `${row.seq}:${row.claim_no + 1}`,
      });
    };
    q.noteClaim.run(op, at);
    // Expired leases and due retries first, then the backlog in arrival order.
    let deadLettered = false;
    for (const row of q.expired.all(op, at, max)) {
      if (row.deliveries < options.maxDeliveries) {
        take(row);
        continue;
      }
      const reason = deadLetterReason(row.deliveries);
      q.deadLetter.run(row.ticket_id, op, row.payload, row.deliveries, reason, at);
      q.deleteTask.run(row.seq);
      fail(row.ticket_id, DEAD_LETTER_CODE, reason, at);
      deadLettered = true;
    }
    // Once per claim, and only when it added some: the trim walks up to the cap in the index.
    if (deadLettered) q.trimDeadLetters.run(op, op, deadLettersKept);
    if (claimed.length < max) for (const row of q.fresh.all(op, max - claimed.length)) take(row);
    return claimed;
  });

  const extendTx = db.transaction((consumer: string, tasks: readonly ClaimedTask[], until: number): number => {
    let extended = 0;
    for (const task of tasks) {
      const [seq, claimNo] = task.receipt.split(':').map(Number);
      extended += q.extend.run(until, seq, claimNo, consumer).changes;
    }
    return extended;
  });

  const completeTx = db.transaction((completions: readonly Completion[]) => {
    const at = now();
    for (const { task, outcome } of completions) {
      if (outcome.ok) {
        const changed = q.finish.run({ id: task.id, status: 'done', result: outcome.result, errorCode: null, errorMessage: null, at, expiresAt: at + ttlMs }).changes;
        if (changed > 0) delivery.routeCompletion(task.id);
      } else {
        fail(task.id, outcome.error.code, outcome.error.message, at);
      }
      // Whichever delivery completes first removes the task; later ones find nothing to change.
      q.deleteTaskOf.run(task.id);
    }
  });

  const takeTx = db.transaction((client: string, limit: number): Ticket[] => {
    const rows = q.pending.all(client, now(), limit);
    for (const row of rows) q.markDelivered.run(row.id);
    return rows.map(ticketFromRow);
  });

  const reserveTx = db.transaction((client: string, key: string, id: string): string | undefined => {
    const held = q.key.get(client, key);
    if (held && held.expires_at > now()) return held.ticket_id === id ? undefined : held.ticket_id;
    q.putKey.run(client, key, id, now() + ttlMs);
    return undefined;
  });

  const purgeTx = db.transaction(() => {
    q.purgeTickets.run(now());
    q.purgeKeys.run(now());
    delivery.purge(now());
  });

  // Claims waiting in this process, woken by an enqueue or retry here (others are polled).
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const resolve of waiters) resolve();
  };
  let closed = false;

  /** Runs a synchronous step; SQLite failures (busy past the timeout, disk full) become UNAVAILABLE. */
  function guard<T>(step: () => T): T {
    if (closed) throw closedError();
    try {
      return step();
    } catch (error) {
      throw toUnavailable(error);
    }
  }

  function pause(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  const purge = () => {
    try {
      if (!closed) purgeTx.immediate();
    } catch (error) {
      options.logger?.warn({ err: (error as Error).message }, 'queue: purging expired tickets failed; will try again');
    }
  };
  const purgeTimer = setInterval(purge, PURGE_EVERY_MS);
  purgeTimer.unref();
  purge();

  return {
    backend: 'sqlite',
    ...channels,
    ...sqliteDeadLetters(db, guard, { now, wake }),

    async enqueue(task: NewTask): Promise<Ticket> {
      const at = now();
      const created = guard(() => enqueueTx.immediate(task, at));
      if (created) wake();
      const row = guard(() => q.ticket.get(task.id, at));
      if (!row) throw toUnavailable(new Error(`ticket ${task.id} vanished after enqueue`));
      return ticketFromRow(row);
    },

    async saveTicket(ticket: Ticket): Promise<void> {
      guard(() =>
        q.saveTicket.run({
          id: ticket.id,
          client: ticket.client,
          status: ticket.status,
          operation: ticket.operation,
          num1: ticket.num1 ?? null,
          num2: ticket.num2 ?? null,
          expression: ticket.expression ?? null,
          result: ticket.result ?? null,
          errorCode: ticket.error?.code ?? null,
          errorMessage: ticket.error?.message ?? null,
          createdAt: ticket.createdAt,
          completedAt: ticket.completedAt ?? null,
          expiresAt: now() + ttlMs,
        }),
      );
    },

    async getTicket(client: string, id: string): Promise<Ticket | undefined> {
      const row = guard(() => q.ticket.get(id, now()));
      return row && row.client === client ? ticketFromRow(row) : undefined;
    },

    async takeCompleted(client: string, limit: number): Promise<Ticket[]> {
      return limit > 0 ? guard(() => takeTx.immediate(client, limit)) : [];
    },

    async reserveKey(client: string, key: string, id: string): Promise<string | undefined> {
      return guard(() => reserveTx.immediate(client, key, id));
    },

    async claim(op: ServiceOp, consumer: string, max: number, { leaseMs, blockMs, signal }: ClaimOptions): Promise<ClaimedTask[]> {
      if (max <= 0) return [];
      const until = Date.now() + blockMs;
      for (;;) {
        // A plain read first: polling must not take the write lock that every process contends for.
        if (guard(() => q.ready.get(op, now())) !== undefined) {
          const tasks = guard(() => claimTx.immediate(op, consumer, max, leaseMs));
          if (tasks.length > 0) return tasks;
        }
        const left = until - Date.now();
        if (left <= 0 || signal?.aborted || closed) return [];
        await pause(Math.min(POLL_MS, left), signal);
      }
    },

    async complete(_op: ServiceOp, completions: readonly Completion[]): Promise<void> {
      if (completions.length > 0) guard(() => completeTx.immediate(completions));
    },

    async extend(_op: ServiceOp, consumer: string, tasks: readonly ClaimedTask[], leaseMs: number): Promise<number> {
      return tasks.length > 0 ? guard(() => extendTx.immediate(consumer, tasks, now() + leaseMs)) : 0;
    },

    async takeOverKey(client: string, key: string, expected: string, next: string): Promise<boolean> {
      return guard(() => q.takeOver.run(next, client, key, expected, now()).changes === 1);
    },

    async retryLater(_op: ServiceOp, task: ClaimedTask, delayMs: number): Promise<void> {
      const [seq, claimNo] = task.receipt.split(':').map(Number);
      // lease_until doubles as "not before": max(1, …) keeps it apart from 0, "never claimed".
      guard(() => q.giveBack.run(Math.max(1, now() + Math.max(0, delayMs)), seq, claimNo));
      if (delayMs <= 0) wake();
    },

    async stats(operations: readonly ServiceOp[]): Promise<Record<string, OperationStats>> {
      const at = now();
      const result: Record<string, OperationStats> = {};
      for (const op of operations) {
        const row = guard(() => q.stats.get(at, op))!;
        result[op] = {
          depth: row.depth,
          inFlight: row.in_flight,
          oldestAgeMs: row.oldest === null ? 0 : Math.max(0, at - row.oldest),
          deadLetters: guard(() => q.deadLetters.get(op)) ?? 0,
        };
        const lastClaimAt = guard(() => q.lastClaim.get(op));
        if (lastClaimAt !== undefined) result[op] = { ...result[op]!, lastClaimAt };
      }
      return result;
    },

    async ping(): Promise<void> {
      guard(() => q.ping.get());
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(purgeTimer);
      wake();
      db.close();
    },
  };
}

/** A stored payload as a task; throws when it is not one (a corrupt or foreign row). */
function decodeTask(payload: string): NewTask {
  const task = JSON.parse(payload) as NewTask;
  if (typeof task !== 'object' || task === null || typeof task.id !== 'string' || typeof task.operation !== 'string') {
    throw new Error('not a task object');
  }
  return task;
}
