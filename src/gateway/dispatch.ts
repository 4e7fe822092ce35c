/**
 * The gateway's one decision: answer now, or store the request durably and answer later.
 *
 *   direct call ─ ok ──────────────────────────────▶ 200 (result)
 *        │      └ argument / domain error ─────────▶ 4xx at once, never queued
 *        └ unavailable (UNAVAILABLE, DEADLINE_EXCEEDED)
 *             └ pure pre-check of the domain ──────▶ 422 at once, never queued
 *             └ enqueue ─ stored ──────────────────▶ 202 (ticket)
 *                      └ queue unavailable too ────▶ 503, nothing accepted
 *
 * With an Idempotency-Key, the key is bound to the request's id before anything is computed,
 * so a retry replays the first outcome (same id) instead of computing or enqueueing again.
 */
import { createHash, randomUUID } from 'node:crypto';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ArithmeticOp } from '../shared/operations.js';
import type { DurableQueue, NewTask, Ticket } from '../queue/types.js';
import { isUpstreamUnavailable, type Upstreams } from '../upstream/index.js';
import type { ActivityLog } from './activity.js';
import type { GatewayMetrics } from './metrics.js';

export type Job =
  | { readonly operation: ArithmeticOp; readonly num1: number; readonly num2: number }
  | { readonly operation: 'evaluate'; readonly expression: string };

export interface Caller {
  readonly client: string;
  readonly requestId: string;
  readonly idempotencyKey?: string | undefined;
  /** A checked webhook URL: where the ticket is POSTed when its queued work completes. */
  readonly callback?: string | undefined;
}

export type Answer =
  | { readonly kind: 'done'; readonly id: string; readonly result: number }
  | { readonly kind: 'queued'; readonly id: string };

export interface DispatcherDeps {
  readonly upstreams: Upstreams;
  readonly queue: DurableQueue;
  readonly deadlineMs: number;
  readonly logger: Logger;
  /** Throws the domain error the service would raise (division by zero, …); pure, no I/O. */
  readonly precheck: (job: Job) => void;
  /** How long a retry waits for a concurrent request holding the same key to record its outcome. */
  readonly keyWaitMs?: number;
  /** Where the dashboard reads the latest requests from. */
  readonly activity?: ActivityLog;
  readonly metrics?: Pick<GatewayMetrics, 'queued'>;
}

export function createDispatcher(deps: DispatcherDeps) {
  const { upstreams, queue, logger } = deps;
  const keyWaitMs = deps.keyWaitMs ?? deps.deadlineMs + 1000;

  const callService = (job: Job, requestId: string) => {
    const options = { deadline: Date.now() + deps.deadlineMs, requestId };
    return job.operation === 'evaluate'
      ? upstreams.evaluate(job.expression, options)
      : upstreams.arithmetic(job.operation, job.num1, job.num2, options);
  };

  async function enqueue(job: Job, caller: Caller, id: string, reason: Error): Promise<Answer> {
    deps.precheck(job);
    const task: NewTask = { id, client: caller.client, requestId: caller.requestId, ...job, ...(caller.callback && { callback: caller.callback }) };
    try {
      await queue.enqueue(task);
    } catch (error) {
      // A write that timed out may still have been applied (Redis ran it late): ask once before
      // answering that nothing was accepted. Enqueueing is idempotent by id, so either way one task.
      const stored = await queue.getTicket(caller.client, id).catch(() => undefined);
      if (!stored) {
        logger.error({ reqId: caller.requestId, err: error }, 'service and queue both unavailable; request not accepted');
        throw new CalcError('UNAVAILABLE', `the ${job.operation} service is unavailable and the request could not be queued; nothing was accepted, retry later`);
      }
    }
    deps.metrics?.queued(job.operation);
    // One line per queued request, with its ticket; the circuit changes are logged where they happen.
    logger.info({ reqId: caller.requestId, id, operation: job.operation, reason: reason.message }, 'service unavailable; request queued');
    return { kind: 'queued', id };
  }

  async function run(job: Job, caller: Caller, id: string, remember: boolean): Promise<Answer> {
    try {
      const result = await callService(job, caller.requestId);
      if (remember) await saveQuietly(ticketOf(job, caller.client, id, { status: 'done', result }));
      return { kind: 'done', id, result };
    } catch (error) {
      if (isUpstreamUnavailable(error)) {
        try {
          return await enqueue(job, caller, id, error);
        } catch (refused) {
          // A domain error found by the pre-check is this request's answer: remember it for the key.
          if (remember && refused instanceof CalcError && refused.code !== 'UNAVAILABLE') {
            await saveQuietly(ticketOf(job, caller.client, id, { status: 'failed', error: { code: refused.code, message: refused.message } }));
          }
          throw refused;
        }
      }
      if (remember && error instanceof CalcError && error.code !== 'UPSTREAM_ERROR') {
        await saveQuietly(ticketOf(job, caller.client, id, { status: 'failed', error: { code: error.code, message: error.message } }));
      }
      throw error;
    }
  }

  async function saveQuietly(ticket: Ticket) {
    try {
      await queue.saveTicket(ticket);
    } catch (error) {
      logger.warn({ id: ticket.id, err: error }, 'could not record the outcome of an idempotent request');
    }
  }

  /**
   * Replays the outcome bound to an Idempotency-Key, waiting for one still in progress. A holder
   * that recorded nothing within its deadline has died or failed (503); its request is taken over
   * under the same id, by one retry only: the key moves to the taker by compare-and-set on the
   * holder it held, and the retries that lose wait for the winner's outcome instead.
   */
  async function replay(job: Job, caller: Caller, key: string, held: string): Promise<Answer> {
    const id = held.split(FINGERPRINT_SEPARATOR)[0]!;
    for (let round = 0; round < MAX_TAKEOVER_ROUNDS; round++) {
      const until = Date.now() + keyWaitMs;
      for (let pause = 20; ; pause = Math.min(pause * 2, 250)) {
        const ticket = await queue.getTicket(caller.client, id);
        if (ticket) {
          if (ticket.status === 'queued') return { kind: 'queued', id };
          if (ticket.status === 'done') return { kind: 'done', id, result: ticket.result! };
          throw new CalcError(ticket.error?.code ?? 'INTERNAL', ticket.error?.message ?? 'failed');
        }
        if (Date.now() + pause > until) break;
        await new Promise((r) => setTimeout(r, pause));
      }
      const next = [id, fingerprint(job), randomUUID()].join(FINGERPRINT_SEPARATOR);
      if (await keyStore(() => queue.takeOverKey(caller.client, key, held, next))) {
        logger.warn({ reqId: caller.requestId, id }, 'idempotency key held without an outcome; taking the request over');
        return run(job, caller, id, true);
      }
      // Another retry took it over first: wait for its outcome (or take over from it in turn).
      held = (await keyStore(() => queue.reserveKey(caller.client, key, next))) ?? next;
      if (held === next) return run(job, caller, id, true); // the key had expired: it is ours now
    }
    throw new CalcError('UNAVAILABLE', 'the request holding this Idempotency-Key recorded no outcome; nothing was accepted, retry with the same key');
  }

  async function keyStore<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      logger.warn({ err: error }, 'idempotency store unavailable; request refused');
      throw new CalcError('UNAVAILABLE', 'the idempotency store (the queue) is unavailable; nothing was accepted, retry with the same Idempotency-Key');
    }
  }

  async function dispatch(job: Job, caller: Caller): Promise<Answer> {
    const id = randomUUID();
    if (caller.idempotencyKey === undefined) return run(job, caller, id, false);
    const print = fingerprint(job);
    let holder: string | undefined;
    try {
      holder = await queue.reserveKey(caller.client, caller.idempotencyKey, `${id}${FINGERPRINT_SEPARATOR}${print}`);
    } catch (error) {
      // Without the store the key cannot be honoured: answering anyway could compute or enqueue
      // the same request twice under two ids. Refuse, so that the client retries with the same key.
      logger.warn({ reqId: caller.requestId, err: error }, 'idempotency store unavailable; request refused');
      throw new CalcError('UNAVAILABLE', 'the idempotency store (the queue) is unavailable; nothing was accepted, retry with the same Idempotency-Key');
    }
    if (holder === undefined) return run(job, caller, id, true);
    // The key holds the first request's id and what it asked; a different request is refused at
    // once, even when the first left no ticket behind.
    const [, holderPrint] = holder.split(FINGERPRINT_SEPARATOR);
    if (holderPrint !== undefined && holderPrint !== print) {
      throw new CalcError('CONFLICT', 'this Idempotency-Key was already used for a different request');
    }
    return replay(job, caller, caller.idempotencyKey, holder);
  }

  const activity = deps.activity;
  if (!activity) return { dispatch };
  return {
    async dispatch(job: Job, caller: Caller): Promise<Answer> {
      const at = Date.now();
      try {
        const answer = await dispatch(job, caller);
        // One entry object per request, built whole (no spread of a shared base): this runs on every request.
        activity.record(answer.kind === 'done'
          ? { at, requestId: caller.requestId, client: caller.client, operation: job.operation, input: inputOf(job), id: answer.id, path: 'direct', status: 200, result: answer.result }
          : { at, requestId: caller.requestId, client: caller.client, operation: job.operation, input: inputOf(job), id: answer.id, path: 'queued', status: 202 });
        return answer;
      } catch (error) {
        const calc = error instanceof CalcError ? error : undefined;
        activity.record({ at, requestId: caller.requestId, client: caller.client, operation: job.operation, input: inputOf(job), id: undefined, path: 'rejected', status: calc?.httpStatus ?? 500, error: calc?.code ?? 'INTERNAL' });
        throw error;
      }
    },
  };
}

const inputOf = (job: Job) => (job.operation === 'evaluate' ? job.expression.slice(0, 200) : `${job.num1} ${job.num2}`);

const FINGERPRINT_SEPARATOR = ' ';
/** Takeovers one request tries in turn before refusing (each after a wait of keyWaitMs). */
const MAX_TAKEOVER_ROUNDS = 3;

/** What a request asks, compactly: the same key must come back with the same question. */
function fingerprint(job: Job): string {
  return job.operation === 'evaluate'
    ? `evaluate:${createHash('sha256').update(job.expression).digest('base64url')}`
    : `${job.operation}:${job.num1}:${job.num2}`;
}

function ticketOf(job: Job, client: string, id: string, outcome: Pick<Ticket, 'status' | 'result' | 'error'>): Ticket {
  const now = Date.now();
  return { id, client, operation: job.operation, ...operands(job), createdAt: now, completedAt: now, ...outcome };
}

const operands = (job: Job) =>
  job.operation === 'evaluate' ? { expression: job.expression } : { num1: job.num1, num2: job.num2 };
