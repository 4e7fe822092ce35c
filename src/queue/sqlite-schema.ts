/**
 * The embedded queue's file: opening it safely from several processes at once, its tables, and
 * the mapping of a ticket row to a Ticket.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isErrorCode } from '../shared/errors.js';
import type { ServiceOp } from '../shared/operations.js';
import type { Ticket, TicketStatus } from './types.js';

type Db = Database.Database;

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id TEXT NOT NULL UNIQUE,
  operation TEXT NOT NULL,
  payload TEXT NOT NULL,                -- the NewTask as JSON
  enqueued_at INTEGER NOT NULL,
  lease_until INTEGER NOT NULL DEFAULT 0, -- 0: never claimed; else not claimable before this (lease or retry delay)
  consumer TEXT,                        -- who holds the lease; NULL when nobody does
  deliveries INTEGER NOT NULL DEFAULT 0,
  retries INTEGER NOT NULL DEFAULT 0,
  claim_no INTEGER NOT NULL DEFAULT 0   -- grows at every claim: a receipt names one delivery
);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (operation, lease_until, seq);

CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY,
  client TEXT NOT NULL,
  status TEXT NOT NULL,
  operation TEXT NOT NULL,
  num1 REAL, num2 REAL, expression TEXT,
  result REAL, error_code TEXT, error_message TEXT,
  created_at INTEGER NOT NULL,
  completed_at INTEGER,
  expires_at INTEGER,                   -- NULL while queued: a queued ticket lives as long as its task
  delivered INTEGER                     -- NULL: never pending; 0: completed, not taken yet; 1: taken
);
CREATE INDEX IF NOT EXISTS tickets_pending ON tickets (client, completed_at) WHERE delivered = 0;
CREATE INDEX IF NOT EXISTS tickets_expiry ON tickets (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS idempotency_keys (
  client TEXT NOT NULL,
  key TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (client, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency_keys (expires_at);

CREATE TABLE IF NOT EXISTS dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id TEXT NOT NULL,
  operation TEXT NOT NULL,
  payload TEXT NOT NULL,
  deliveries INTEGER NOT NULL,
  reason TEXT NOT NULL,
  dead_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_op ON dead_letters (operation);

CREATE TABLE IF NOT EXISTS claims (
  operation TEXT PRIMARY KEY,
  last_claim_at INTEGER NOT NULL        -- the last claim of the operation that found a task ready
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dead_letters_ticket ON dead_letters (ticket_id);

-- #15. Each client's delivery log behind GET /v1/events: seq is the event id (the cursor).
CREATE TABLE IF NOT EXISTS delivery_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  client TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  logged_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_log_client ON delivery_log (client, seq);
CREATE INDEX IF NOT EXISTS delivery_log_age ON delivery_log (logged_at);
CREATE INDEX IF NOT EXISTS tickets_history ON tickets (client, created_at, id);

-- Completions of tickets with a callback, until one gateway has POSTed them.
CREATE TABLE IF NOT EXISTS webhooks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id TEXT NOT NULL,
  client TEXT NOT NULL,
  url TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before INTEGER NOT NULL DEFAULT 0   -- not handed out again before this (backoff)
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (not_before, seq);
CREATE TABLE IF NOT EXISTS webhook_dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id TEXT NOT NULL,
  client TEXT NOT NULL,
  url TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  dead_at INTEGER NOT NULL
);
`;

/** Columns added after a file may have been created: added in place when missing. */
const ADDED_COLUMNS: readonly [table: string, column: string, type: string][] = [['tickets', 'callback', 'TEXT']];

function addMissingColumns(db: Db): void {
  for (const [table, column, type] of ADDED_COLUMNS) {
    const present = (db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === column);
    if (!present) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

/**
 * Opens (and creates) `${dataDir}/calcmesh.db`. The gateway and five services may do this at
 * the same moment: busy_timeout makes each wait for the others' locks, and the schema is created
 * inside an IMMEDIATE transaction so that only one of them runs it.
 */
export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'calcmesh.db'));
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Switching to WAL needs a moment alone with the file; it is a no-op once the file is WAL.
  retryBusy(() => db.pragma('journal_mode = WAL'));
  // NORMAL in WAL mode: a commit is durable once written to the WAL, which survives a crash of
  // any process; the WAL is fsynced only at checkpoints, so a power loss or OS crash may lose
  // the last commits. FULL would fsync every commit for a fraction of the throughput.
  db.pragma('synchronous = NORMAL');
  db.transaction(() => {
    db.exec(SCHEMA);
    addMissingColumns(db);
  }).immediate();
  return db;
}

function retryBusy(action: () => unknown): void {
  const until = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      action();
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > until) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

export interface TicketRow {
  id: string;
  client: string;
  status: TicketStatus;
  operation: ServiceOp;
  num1: number | null;
  num2: number | null;
  expression: string | null;
  result: number | null;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
  completed_at: number | null;
  callback: string | null;
}

export function ticketFromRow(row: TicketRow): Ticket {
  return {
    id: row.id,
    client: row.client,
    status: row.status,
    operation: row.operation,
    ...(row.num1 !== null && { num1: row.num1 }),
    ...(row.num2 !== null && { num2: row.num2 }),
    ...(row.expression !== null && { expression: row.expression }),
    ...(row.result !== null && { result: row.result }),
    ...(row.error_code !== null && {
      error: { code: isErrorCode(row.error_code) ? row.error_code : 'INTERNAL', message: row.error_message ?? '' },
    }),
    createdAt: row.created_at,
    ...(row.completed_at !== null && { completedAt: row.completed_at }),
    ...(row.callback !== null && row.callback !== undefined && { callback: row.callback }),
  };
}

export interface TaskRow {
  seq: number;
  ticket_id: string;
  payload: string;
  enqueued_at: number;
  consumer: string | null;
  deliveries: number;
  retries: number;
  claim_no: number;
}
