/**
 * The outbox's file: an ordered journal of writes the gateway accepted while Redis could not take
 * them. One table, one row per write, in arrival order (seq); `ref` names what a row is about so
 * that the same write journaled twice is stored once and a read finds it by ticket id or key.
 *   task:<ticket id>        a queued request (body: the NewTask and its queued ticket)
 *   ticket:<ticket id>      a ticket answered directly, kept for its Idempotency-Key (body: Ticket)
 *   key:<len>:<client>:<key> an Idempotency-Key bound to its holder (body: the holder string)
 * Beside it, `seen_keys` remembers every Idempotency-Key this gateway reserved in Redis (until
 * it expires there): while Redis is away, a key found there is known to be held, and only a key
 * never seen is new. Without it, a retry arriving during an outage would be taken for a new request.
 * WAL with synchronous NORMAL: a committed row survives a kill -9 of the gateway (not an OS crash
 * before the next checkpoint, the same promise the embedded queue makes).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NewTask, Ticket } from './types.js';

export const OUTBOX_FILE = 'gateway-outbox.db';

export type JournalEntry =
  | { readonly seq: number; readonly kind: 'task'; readonly task: NewTask; readonly ticket: Ticket }
  | { readonly seq: number; readonly kind: 'ticket'; readonly ticket: Ticket }
  | { readonly seq: number; readonly kind: 'key'; readonly client: string; readonly key: string; readonly holder: string };

interface Row {
  seq: number;
  ref: string;
  kind: 'task' | 'ticket' | 'key';
  body: string;
  at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ref TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_keys (
  client TEXT NOT NULL,
  key TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (client, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_keys_expiry ON seen_keys (expires_at);`;

const keyRef = (client: string, key: string) => `key:${client.length}:${client}:${key}`;

export function openJournal(dir: string) {
  mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, OUTBOX_FILE));
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  const q = {
    insert: db.prepare('INSERT INTO journal (ref, kind, body, at) VALUES (?, ?, ?, ?) ON CONFLICT (ref) DO NOTHING'),
    byRef: db.prepare<[string], Row>('SELECT * FROM journal WHERE ref = ?'),
    head: db.prepare<[number], Row>('SELECT * FROM journal ORDER BY seq LIMIT ?'),
    remove: db.prepare('DELETE FROM journal WHERE seq = ?'),
    setBody: db.prepare('UPDATE journal SET body = ? WHERE seq = ?'),
    count: db.prepare<[], number>('SELECT COUNT(*) FROM journal').pluck(),
    any: db.prepare<[], number>('SELECT 1 FROM journal LIMIT 1').pluck(),
    oldest: db.prepare<[], number | null>('SELECT MIN(at) FROM journal').pluck(),
    remember: db.prepare('INSERT OR REPLACE INTO seen_keys (client, key, holder, expires_at) VALUES (?, ?, ?, ?)'),
    seen: db.prepare<[string, string, number], string>('SELECT holder FROM seen_keys WHERE client = ? AND key = ? AND expires_at > ?').pluck(),
    forget: db.prepare('DELETE FROM seen_keys WHERE expires_at <= ?'),
  };

  /** Inserts unless the ref is there already, refusing a new row beyond `max`; returns the row now stored. */
  const put = db.transaction((ref: string, kind: Row['kind'], body: string, at: number, max: number): Row | undefined => {
    const held = q.byRef.get(ref);
    if (held) return held;
    if (q.count.get()! >= max) return undefined;
    q.insert.run(ref, kind, body, at);
    return q.byRef.get(ref);
  });

  /** Compare-and-set of a journaled key's holder; undefined when the key is not journaled. */
  const takeOver = db.transaction((client: string, key: string, expected: string, next: string): boolean | undefined => {
    const row = q.byRef.get(keyRef(client, key));
    if (!row) return undefined;
    if ((JSON.parse(row.body) as { holder: string }).holder !== expected) return false;
    q.setBody.run(JSON.stringify({ client, key, holder: next }), row.seq);
    return true;
  });

  function entry(row: Row): JournalEntry {
    const body = JSON.parse(row.body);
    if (row.kind === 'task') return { seq: row.seq, kind: 'task', task: body.task, ticket: body.ticket };
    if (row.kind === 'ticket') return { seq: row.seq, kind: 'ticket', ticket: body };
    return { seq: row.seq, kind: 'key', client: body.client, key: body.key, holder: body.holder };
  }

  return {
    /** The queued ticket of a journaled task (the one stored first for that id), or undefined when full. */
    putTask(task: NewTask, ticket: Ticket, max: number): Ticket | undefined {
      const row = put(`task:${task.id}`, 'task', JSON.stringify({ task, ticket }), ticket.createdAt, max);
      return row ? (JSON.parse(row.body) as { ticket: Ticket }).ticket : undefined;
    },
    putTicket(ticket: Ticket, at: number, max: number): boolean {
      // A directly answered ticket replaces nothing journaled: its id is fresh, or its key's.
      return put(`ticket:${ticket.id}`, 'ticket', JSON.stringify(ticket), at, max) !== undefined;
    },
    /** The holder of the key after this call: `holder` when it was free, the earlier one otherwise; undefined when full. */
    putKey(client: string, key: string, holder: string, at: number, max: number): string | undefined {
      const row = put(keyRef(client, key), 'key', JSON.stringify({ client, key, holder }), at, max);
      return row ? (JSON.parse(row.body) as { holder: string }).holder : undefined;
    },
    /** A ticket this journal holds: a journaled task's queued ticket or a directly answered one. */
    ticket(id: string): Ticket | undefined {
      const row = q.byRef.get(`task:${id}`) ?? q.byRef.get(`ticket:${id}`);
      if (!row) return undefined;
      return row.kind === 'task' ? (JSON.parse(row.body) as { ticket: Ticket }).ticket : (JSON.parse(row.body) as Ticket);
    },
    keyHolder(client: string, key: string): string | undefined {
      const row = q.byRef.get(keyRef(client, key));
      return row ? (JSON.parse(row.body) as { holder: string }).holder : undefined;
    },
    takeOverKey: (client: string, key: string, expected: string, next: string) => takeOver(client, key, expected, next),
    /** A key Redis holds for `holder`, as this gateway learned it, until it expires there. */
    rememberKey: (client: string, key: string, holder: string, expiresAt: number) => void q.remember.run(client, key, holder, expiresAt),
    seenKey: (client: string, key: string, at: number): string | undefined => q.seen.get(client, key, at),
    forgetKeys: (at: number) => q.forget.run(at).changes,
    head: (limit: number): JournalEntry[] => q.head.all(limit).map(entry),
    remove: (seq: number) => void q.remove.run(seq),
    isEmpty: () => q.any.get() === undefined,
    stats(): { depth: number; oldestAt: number | undefined } {
      return { depth: q.count.get()!, oldestAt: q.oldest.get() ?? undefined };
    },
    close: () => db.close(),
  };
}

export type Journal = ReturnType<typeof openJournal>;
