/** Dead letters for operators on the embedded backend (#15): listed, replayed, purged, each one transaction. */
import type Database from 'better-sqlite3';
import type { ServiceOp } from '../shared/operations.js';
import type { DeadLetter, DurableQueue, NewTask } from './types.js';

type Guard = <T>(step: () => T) => T;

interface DeadRow {
  seq: number;
  ticket_id: string;
  operation: ServiceOp;
  payload: string;
  deliveries: number;
  reason: string;
  dead_at: number;
}

export type SqliteDeadLetters = Pick<DurableQueue, 'deadLetters' | 'replayDeadLetter' | 'purgeDeadLetter'>;

export function sqliteDeadLetters(db: Database.Database, guard: Guard, options: { now: () => number; wake: () => void }): SqliteDeadLetters {
  const q = {
    latest: db.prepare<[string, number], DeadRow & { enqueued_at: number | null }>(
      `SELECT d.*, t.created_at AS enqueued_at FROM dead_letters d LEFT JOIN tickets t ON t.id = d.ticket_id
       WHERE d.operation IN (SELECT value FROM json_each(?)) ORDER BY d.seq DESC LIMIT ?`,
    ),
    byTicket: db.prepare<[string], DeadRow>('SELECT * FROM dead_letters WHERE ticket_id = ? ORDER BY seq DESC LIMIT 1'),
    remove: db.prepare('DELETE FROM dead_letters WHERE seq = ?'),
    // Queued again, out of the pending channels, no expiry: as a freshly enqueued ticket.
    requeueTicket: db.prepare(
      `UPDATE tickets SET status = 'queued', result = NULL, error_code = NULL, error_message = NULL,
         completed_at = NULL, expires_at = NULL, delivered = NULL WHERE id = ?`,
    ),
    insertTicket: db.prepare(
      `INSERT OR IGNORE INTO tickets (id, client, status, operation, num1, num2, expression, callback, created_at)
       VALUES (@id, @client, 'queued', @operation, @num1, @num2, @expression, @callback, @createdAt)`,
    ),
    insertTask: db.prepare('INSERT OR IGNORE INTO tasks (ticket_id, operation, payload, enqueued_at) VALUES (?, ?, ?, ?)'),
  };

  const replayTx = db.transaction((id: string): boolean => {
    const row = q.byTicket.get(id);
    if (!row) return false;
    const task = JSON.parse(row.payload) as NewTask;
    const at = options.now();
    // The ticket expired since it was dead-lettered: it is created again from the task.
    q.insertTicket.run({
      id, client: task.client, operation: row.operation, num1: task.num1 ?? null, num2: task.num2 ?? null,
      expression: task.expression ?? null, callback: task.callback ?? null, createdAt: at,
    });
    q.requeueTicket.run(id);
    q.insertTask.run(id, row.operation, row.payload, at);
    q.remove.run(row.seq);
    return true;
  });

  const purgeTx = db.transaction((id: string): boolean => {
    const row = q.byTicket.get(id);
    if (row) q.remove.run(row.seq);
    return row !== undefined;
  });

  return {
    async deadLetters(operations, limit) {
      const rows = guard(() => q.latest.all(JSON.stringify(operations), limit));
      return rows.map((row): DeadLetter => {
        const task = JSON.parse(row.payload) as NewTask;
        return {
          id: row.ticket_id, operation: row.operation, client: task.client, deliveries: row.deliveries,
          reason: row.reason, deadAt: row.dead_at, enqueuedAt: row.enqueued_at ?? row.dead_at, task,
        };
      });
    },

    async replayDeadLetter(id) {
      const replayed = guard(() => replayTx.immediate(id));
      if (replayed) options.wake();
      return replayed;
    },

    async purgeDeadLetter(id) {
      return guard(() => purgeTx.immediate(id));
    },
  };
}
