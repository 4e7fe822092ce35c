/**
 * The one boundary between calcmesh and its message-oriented middleware. The gateway and the
 * service consumers depend on `DurableQueue` only, never on ioredis or better-sqlite3 handles.
 * Every backend passes the same contract suite (test/contract/queue.contract.ts).
 */
import type { ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ServiceOp } from '../shared/operations.js';

export type TicketStatus = 'queued' | 'done' | 'failed';

export interface TicketError {
  readonly code: ErrorCode;
  readonly message: string;
}

/** What a client can read back about one request, direct or queued. */
export interface Ticket {
  readonly id: string;
  readonly client: string;
  readonly status: TicketStatus;
  readonly operation: ServiceOp;
  /** Operands of an arithmetic request. */
  readonly num1?: number;
  readonly num2?: number;
  /** The expression of an evaluate request. */
  readonly expression?: string;
  readonly result?: number;
  readonly error?: TicketError;
  /** ms since the epoch. */
  readonly createdAt: number;
  readonly completedAt?: number;
  /** Where its result is POSTed on completion (a webhook) instead of waiting in the pending channels. */
  readonly callback?: string;
}

/** A request the gateway could not deliver, stored until its service takes it. */
export interface NewTask {
  /** The ticket id, chosen by the gateway (a UUID). */
  readonly id: string;
  readonly client: string;
  readonly requestId: string;
  readonly operation: ServiceOp;
  readonly num1?: number;
  readonly num2?: number;
  readonly expression?: string;
  /** A webhook URL, already checked against CALC_WEBHOOK_ALLOW: the completion is POSTed there. */
  readonly callback?: string;
  /** W3C trace context of the enqueue (its span): the consumer's processing continues that trace. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** A task handed to one consumer under a lease. */
export interface ClaimedTask extends NewTask {
  readonly enqueuedAt: number;
  /** 1 on the first delivery; grows each time the task is claimed again after a lost lease. */
  readonly deliveries: number;
  /** Backend handle of this delivery (a stream entry id, a row id). Opaque to callers. */
  readonly receipt: string;
  /** How many times this task was given back with `retryLater` so far (0 on the first try). */
  readonly retries?: number;
}

export type Outcome =
  | { readonly ok: true; readonly result: number }
  | { readonly ok: false; readonly error: TicketError };

export interface Completion {
  readonly task: ClaimedTask;
  readonly outcome: Outcome;
}

export interface OperationStats {
  /** Tasks stored and not yet completed, claimed or not. */
  readonly depth: number;
  /** Of those, the ones currently claimed by a consumer. */
  readonly inFlight: number;
  /** Age of the oldest stored task in ms; 0 when empty. */
  readonly oldestAgeMs: number;
  readonly deadLetters: number;
  /**
   * When a consumer last claimed from this operation's queue (ms since the epoch); undefined when
   * none has since the store was created. Redis records every claim call, the embedded queue every
   * claim that found a task ready: either way a stale value beside ready tasks means no consumer.
   */
  readonly lastClaimAt?: number;
}

/** Writes journaled by the gateway while Redis could not take them, not yet forwarded. */
export interface OutboxStats {
  readonly depth: number;
  readonly max: number;
  /** Age of the oldest journaled write in ms; 0 when empty. */
  readonly oldestAgeMs: number;
}

export interface ClaimOptions {
  /**
   * How long a claim holds before another consumer may take the task again. Redis judges expiry
   * by the idle time of an entry against the *claiming* consumer's leaseMs, so all consumers of
   * one operation should use the same lease (CALC_LEASE_MS).
   */
  readonly leaseMs: number;
  /** Wait up to this long for a task when none is ready (0: do not wait). */
  readonly blockMs: number;
  /** Aborting ends the wait early; the claim then resolves with what it already holds (maybe nothing). */
  readonly signal?: AbortSignal;
}

/** One entry of a client's delivery log: a completed ticket taken by the event stream, and its cursor. */
export interface LoggedTicket {
  /** Opaque and growing: the SSE `id:`; readLog(client, cursor) resumes after it. */
  readonly cursor: string;
  readonly ticket: Ticket;
}

export interface HistoryQuery {
  readonly status?: TicketStatus | undefined;
  readonly operation?: ServiceOp | undefined;
  readonly limit: number;
  /** nextCursor of the previous page; undefined for the newest. */
  readonly cursor?: string | undefined;
}

export interface HistoryPage {
  readonly tickets: Ticket[];
  /** Where the next page starts; undefined when there is none. */
  readonly nextCursor?: string;
}

/** A task given up after maxDeliveries, as an operator sees it. */
export interface DeadLetter {
  /** Its ticket id: a replay puts the task back under the same id. */
  readonly id: string;
  readonly operation: ServiceOp;
  readonly client: string;
  readonly deliveries: number;
  readonly reason: string;
  readonly deadAt: number;
  readonly enqueuedAt: number;
  readonly task: NewTask;
}

/** A completion to POST to its ticket's callback URL, handed to one gateway at a time. */
export interface WebhookDelivery {
  /** Stable across retries of this completion: the receiver dedupes on it (Calcmesh-Delivery-Id). */
  readonly id: string;
  readonly ticketId: string;
  readonly client: string;
  readonly url: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** Backend handle for ackWebhook. Opaque. */
  readonly receipt: string;
}

export interface WebhookClaimOptions {
  /** Attempts after which a delivery goes to the webhook dead letters. */
  readonly maxAttempts: number;
  /** The wait before the second attempt; it doubles after each failure, up to 60 s. */
  readonly retryMs: number;
  /** How long an attempt may take: a delivery is never handed out again sooner than this. */
  readonly attemptMs: number;
}

export interface WebhookStats {
  /** Completions waiting to be POSTed (or being retried). */
  readonly pending: number;
  readonly deadLetters: number;
}

export interface DurableQueue {
  readonly backend: 'redis' | 'sqlite';

  /**
   * Stores the task and its `queued` ticket in one atomic, durable step. Resolves only once the
   * backend has accepted the write; rejects with a CalcError UNAVAILABLE when it cannot.
   * Enqueueing an id that is already stored adds nothing and resolves to the stored ticket.
   */
  enqueue(task: NewTask): Promise<Ticket>;

  /** Stores a ticket answered directly (done or failed), so that an idempotent retry finds it. Never pending. */
  saveTicket(ticket: Ticket): Promise<void>;

  /** This client's ticket, or undefined when unknown, expired or another client's. */
  getTicket(client: string, id: string): Promise<Ticket | undefined>;

  /**
   * Queued tickets of this client that have completed (done or failed) and were never taken
   * before, oldest first, at most `limit`. Taking marks them delivered in the same atomic step:
   * two concurrent calls never receive the same ticket, and none is skipped.
   */
  takeCompleted(client: string, limit: number): Promise<Ticket[]>;

  /**
   * Binds an Idempotency-Key of this client to a ticket id if it is free. Resolves to undefined
   * when `id` now holds the key, or to the id that already held it.
   */
  reserveKey(client: string, key: string, id: string): Promise<string | undefined>;

  /**
   * Up to `max` tasks of this operation only, for this consumer, under a lease. Tasks whose lease
   * expired (their consumer died) are claimed again; a task claimed more than `maxDeliveries`
   * times goes to the dead letters instead and its ticket becomes failed with the reason.
   */
  claim(operation: ServiceOp, consumer: string, max: number, options: ClaimOptions): Promise<ClaimedTask[]>;

  /**
   * For each task: writes its outcome into its ticket, makes the ticket pending for its client,
   * and removes the task, in one atomic step per call. A task completed before (a duplicate
   * delivery after a lost lease) keeps its first outcome: never two different results.
   */
  complete(operation: ServiceOp, completions: readonly Completion[]): Promise<void>;

  /**
   * Extends the lease of deliveries this consumer still holds (a heartbeat while it works on
   * them) to `leaseMs` from now, atomically per task and only for the holder of that exact
   * delivery: a task reclaimed by another consumer meanwhile stays the other's. Resolves to how
   * many were extended.
   */
  extend(operation: ServiceOp, consumer: string, tasks: readonly ClaimedTask[], leaseMs: number): Promise<number>;

  /**
   * Moves an Idempotency-Key from `expected` to `next` only if it still holds `expected`
   * (compare-and-set), so that of many retries taking a dead holder's request over, one wins.
   */
  takeOverKey(client: string, key: string, expected: string, next: string): Promise<boolean>;

  /** Gives a claimed task back, to be claimed again no sooner than `delayMs` from now; not a lost delivery. */
  retryLater(operation: ServiceOp, task: ClaimedTask, delayMs: number): Promise<void>;

  stats(operations: readonly ServiceOp[]): Promise<Record<string, OperationStats>>;

  /** The gateway's local outbox in front of this queue (src/queue/outbox.ts), when there is one. */
  outbox?(): OutboxStats;

  /**
   * The queue behind the outbox, when there is one: readiness probes it, so that a probe ticket is
   * never journaled and its answer says whether Redis itself takes writes.
   */
  behindOutbox?(): DurableQueue;
  // --- the event stream (GET /v1/events) -------------------------------------------------------

  /**
   * Moves up to `limit` of this client's completed, never-taken tickets into its delivery log, in
   * the same atomic way as takeCompleted (a ticket goes to the log or to one takeCompleted, never
   * both). Resolves to how many moved. The log keeps entries for the result TTL.
   */
  logCompleted(client: string, limit: number): Promise<number>;

  /** The cursor of the newest entry of the client's log (a start that replays nothing). */
  logCursor(client: string): Promise<string>;

  /**
   * Entries of the client's log after `cursor`, oldest first, at most `limit`; entries whose
   * ticket expired are left out. Rejects with INVALID_ARGUMENT for a cursor this backend never made.
   */
  readLog(client: string, cursor: string, limit: number): Promise<LoggedTicket[]>;

  // --- history (GET /v1/results) ---------------------------------------------------------------

  /** This client's stored tickets, newest first, within the TTL. INVALID_ARGUMENT for a foreign cursor. */
  listTickets(client: string, query: HistoryQuery): Promise<HistoryPage>;

  // --- dead letters, for operators -------------------------------------------------------------

  /** The newest dead letters of these operations, newest first, at most `limit` in all. */
  deadLetters(operations: readonly ServiceOp[], limit: number): Promise<DeadLetter[]>;

  /**
   * Puts a dead letter's task back into its queue under the same ticket id, its ticket queued
   * again (and out of its client's pending results). False when there is no such dead letter.
   */
  replayDeadLetter(id: string): Promise<boolean>;

  /** Deletes a dead letter (its ticket stays failed). False when there is no such dead letter. */
  purgeDeadLetter(id: string): Promise<boolean>;

  // --- webhooks ----------------------------------------------------------------------------------

  /**
   * Up to `max` webhook deliveries due now, for this consumer: new ones, and ones not acknowledged
   * within their backoff (failed, or their gateway died). One given `maxAttempts` times already
   * goes to the webhook dead letters instead.
   */
  claimWebhooks(consumer: string, max: number, options: WebhookClaimOptions): Promise<WebhookDelivery[]>;

  /** The delivery succeeded: it is removed. */
  ackWebhook(delivery: WebhookDelivery): Promise<void>;

  webhookStats(): Promise<WebhookStats>;

  /** Resolves when the backend answers; rejects with UNAVAILABLE otherwise. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

export interface QueueOptions {
  /**
   * How long results and idempotency keys are kept: a ticket expires this long after it was
   * completed or saved; a queued ticket lives as long as its task does.
   */
  readonly resultTtlS: number;
  /** Deliveries after which a task is dead-lettered. */
  readonly maxDeliveries: number;
  /** Dead letters kept per operation, the newest (default 100,000); older ones are deleted. */
  readonly deadLetterCap?: number;
  /**
   * Injected clock (ms since epoch) for timestamps, ages and, in the embedded backend, leases and
   * retry delays; Date.now by default. Redis measures leases and delays with its own clock.
   */
  readonly now?: () => number;
  /** Where connection losses and recoveries are reported; silent by default. */
  readonly logger?: Logger;
}
