/**
 * The embedded backend's delivery channels beyond /pending_results (#15): each client's delivery
 * log behind GET /v1/events, the history behind GET /v1/results (the tickets table itself), and
 * the webhook table that the gateways of one machine take deliveries from. One IMMEDIATE
 * transaction per step that must not race, as everywhere in this backend.
 */
import type Database from 'better-sqlite3';
import { invalidArgument } from '../shared/errors.js';
import { decodeCursor, encodeCursor } from './history-cursor.js';
import { ticketFromRow, type TicketRow } from './sqlite-schema.js';
import type { DurableQueue, HistoryQuery, LoggedTicket, Ticket, WebhookClaimOptions, WebhookDelivery } from './types.js';
import { webhookBackoffMs } from './webhook-backoff.js';

type Guard = <T>(step: () => T) => T;

interface WebhookRow {
  seq: number;
  ticket_id: string;
  client: string;
  url: string;
  attempts: number;
}

export type SqliteDelivery = Pick<DurableQueue, 'logCompleted' | 'logCursor' | 'readLog' | 'listTickets' | 'claimWebhooks' | 'ackWebhook' | 'webhookStats'> & {
  /**
   * Inside the transaction that just completed ticket `id`: a ticket with a callback is taken out
   * of the pending channels and handed to the webhook table instead.
   */
  routeCompletion(id: string): void;
  /** Deletes log entries older than the TTL (the periodic purge). */
  purge(at: number): void;
};

interface HistoryParams {
  client: string;
  now: number;
  createdAt: number;
  id: string;
  status: string | null;
  operation: string | null;
  limit: number;
}

const LOG_CURSOR = /^\d{1,15}$/;
const WEBHOOK_DEAD_LETTERS_KEPT = 100_000;

export function sqliteDelivery(db: Database.Database, guard: Guard, options: { now: () => number; ttlMs: number }): SqliteDelivery {
  const { now, ttlMs } = options;
  const q = {
    callbackOf: db.prepare<[string], { client: string; callback: string | null }>('SELECT client, callback FROM tickets WHERE id = ?'),
    undeliverable: db.prepare('UPDATE tickets SET delivered = NULL WHERE id = ?'),
    addWebhook: db.prepare('INSERT INTO webhooks (ticket_id, client, url) VALUES (?, ?, ?)'),
    pending: db.prepare<[string, number, number], { id: string }>(
      'SELECT id FROM tickets WHERE client = ? AND delivered = 0 AND expires_at > ? ORDER BY completed_at, rowid LIMIT ?',
    ),
    markDelivered: db.prepare('UPDATE tickets SET delivered = 1 WHERE id = ?'),
    // Plain reads first: an idle stream or webhook loop must not take the write lock every round.
    anyPending: db.prepare<[string, number], number>('SELECT 1 FROM tickets WHERE client = ? AND delivered = 0 AND expires_at > ? LIMIT 1').pluck(),
    anyDueWebhook: db.prepare<[number], number>('SELECT 1 FROM webhooks WHERE not_before <= ? LIMIT 1').pluck(),
    log: db.prepare('INSERT INTO delivery_log (client, ticket_id, logged_at) VALUES (?, ?, ?)'),
    logCursor: db.prepare<[string], number | null>('SELECT MAX(seq) FROM delivery_log WHERE client = ?').pluck(),
    readLog: db.prepare<[string, number, number, number], TicketRow & { seq: number }>(
      `SELECT t.*, l.seq AS seq FROM delivery_log l JOIN tickets t ON t.id = l.ticket_id
       WHERE l.client = ? AND l.seq > ? AND t.client = l.client AND t.expires_at > ? ORDER BY l.seq LIMIT ?`,
    ),
    purgeLog: db.prepare('DELETE FROM delivery_log WHERE rowid IN (SELECT rowid FROM delivery_log WHERE logged_at <= ? LIMIT 1000)'),
    history: db.prepare<[HistoryParams], TicketRow>(
      `SELECT * FROM tickets WHERE client = @client AND (expires_at IS NULL OR expires_at > @now)
         AND (created_at < @createdAt OR (created_at = @createdAt AND id < @id))
         AND (@status IS NULL OR status = @status) AND (@operation IS NULL OR operation = @operation)
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
    dueWebhooks: db.prepare<[number, number], WebhookRow>('SELECT * FROM webhooks WHERE not_before <= ? ORDER BY not_before, seq LIMIT ?'),
    handOut: db.prepare('UPDATE webhooks SET attempts = attempts + 1, not_before = ? WHERE seq = ?'),
    deadWebhook: db.prepare('INSERT INTO webhook_dead_letters (ticket_id, client, url, attempts, dead_at) VALUES (?, ?, ?, ?, ?)'),
    trimDeadWebhooks: db.prepare(
      `DELETE FROM webhook_dead_letters WHERE seq <= (SELECT seq FROM webhook_dead_letters ORDER BY seq DESC LIMIT 1 OFFSET ${WEBHOOK_DEAD_LETTERS_KEPT})`,
    ),
    deleteWebhook: db.prepare('DELETE FROM webhooks WHERE seq = ?'),
    webhookCount: db.prepare<[], number>('SELECT COUNT(*) FROM webhooks').pluck(),
    deadWebhookCount: db.prepare<[], number>('SELECT COUNT(*) FROM webhook_dead_letters').pluck(),
  };

  const logTx = db.transaction((client: string, limit: number): number => {
    const at = now();
    const rows = q.pending.all(client, at, limit);
    for (const { id } of rows) {
      q.markDelivered.run(id);
      q.log.run(client, id, at);
    }
    return rows.length;
  });

  const claimTx = db.transaction((max: number, claim: WebhookClaimOptions): WebhookDelivery[] => {
    const at = now();
    const out: WebhookDelivery[] = [];
    let dead = false;
    for (const row of q.dueWebhooks.all(at, max)) {
      if (row.attempts >= claim.maxAttempts) {
        q.deadWebhook.run(row.ticket_id, row.client, row.url, row.attempts, at);
        q.deleteWebhook.run(row.seq);
        dead = true;
        continue;
      }
      const attempt = row.attempts + 1;
      q.handOut.run(at + webhookBackoffMs(attempt, claim), row.seq);
      out.push({ id: `${row.ticket_id}.${row.seq}`, ticketId: row.ticket_id, client: row.client, url: row.url, attempt, receipt: String(row.seq) });
    }
    if (dead) q.trimDeadWebhooks.run();
    return out;
  });

  return {
    routeCompletion(id) {
      const row = q.callbackOf.get(id);
      if (!row?.callback) return;
      q.undeliverable.run(id);
      q.addWebhook.run(id, row.client, row.callback);
    },

    purge(at) {
      q.purgeLog.run(at - ttlMs);
    },

    async logCompleted(client, limit) {
      if (limit <= 0 || guard(() => q.anyPending.get(client, now())) === undefined) return 0;
      return guard(() => logTx.immediate(client, limit));
    },

    async logCursor(client) {
      return String(guard(() => q.logCursor.get(client)) ?? 0);
    },

    async readLog(client, cursor, limit): Promise<LoggedTicket[]> {
      if (!LOG_CURSOR.test(cursor)) throw invalidArgument('Last-Event-ID: not an event id this gateway sent');
      const rows = guard(() => q.readLog.all(client, Number(cursor), now(), limit));
      return rows.map((row) => ({ cursor: String(row.seq), ticket: ticketFromRow(row) }));
    },

    async listTickets(client, query: HistoryQuery) {
      const from = query.cursor ? decodeCursor(query.cursor) : { createdAt: Number.MAX_SAFE_INTEGER, id: '' };
      const rows = guard(() =>
        q.history.all({ client, now: now(), ...from, status: query.status ?? null, operation: query.operation ?? null, limit: query.limit + 1 }),
      );
      const tickets: Ticket[] = rows.slice(0, query.limit).map(ticketFromRow);
      const last = tickets[tickets.length - 1];
      return rows.length > query.limit && last ? { tickets, nextCursor: encodeCursor(last) } : { tickets };
    },

    async claimWebhooks(_consumer, max, claim) {
      if (max <= 0 || guard(() => q.anyDueWebhook.get(now())) === undefined) return [];
      return guard(() => claimTx.immediate(max, claim));
    },

    async ackWebhook(delivery) {
      guard(() => q.deleteWebhook.run(Number(delivery.receipt)));
    },

    async webhookStats() {
      return guard(() => ({ pending: q.webhookCount.get() ?? 0, deadLetters: q.deadWebhookCount.get() ?? 0 }));
    },
  };
}
