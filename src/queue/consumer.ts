/**
 * The drain loop of one operation: claim a batch (half the slots of a bounded concurrency, so
 * that one batch is claimed while the other completes), run each through the handler, and write
 * the outcomes back in batches. A task holds its slot until its outcome is written, so memory stays bounded and a queue that
 * cannot take outcomes stops the loop from claiming more. The loop never throws: a failing
 * backend is logged and retried with a capped backoff. While a task is held (computing, or its
 * outcome waiting to be written) a heartbeat extends its lease every third of the lease, so only
 * a consumer that died or hung loses its tasks to another.
 */
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ServiceOp } from '../shared/operations.js';
import { SpanKind, startSpan, tracingActive, type TraceContext } from '../shared/tracing.js';
import type { ClaimedTask, Completion, DurableQueue, Outcome, TicketError } from './types.js';
import { DEFAULTS as CONFIG_DEFAULTS } from '../shared/config.js';


export interface ConsumerOptions {
  readonly queue: DurableQueue;
  readonly operation: ServiceOp;
  /** This replica's name in the queue; unique per process (host and pid). */
  readonly consumer: string;
  /** Computes a task; `trace` is the context of its processing span (a child of the enqueue's), for the calls it makes. */
  readonly handler: (task: ClaimedTask, trace: TraceContext | undefined) => Outcome | Promise<Outcome>;
  readonly logger: Logger;
  readonly leaseMs: number;
  /** Tasks handled at once (config drainConcurrency). */
  readonly concurrency?: number;
  /** How long one claim waits for work; bounds how late a stop or a reclaim is noticed. */
  readonly blockMs?: number;
  /** Errors meaning "try again later" (an upstream service down); others fail the task. */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Delay before the first retry of a task; doubles at each retry up to `retryMaxMs`. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Cap of the pause after a failing claim or complete (the backend is down). */
  readonly backoffMaxMs?: number;
  /** How often the leases of held tasks are extended (default: a third of leaseMs). */
  readonly heartbeatMs?: number;
  /** How long `stop()` waits for in-flight tasks before leaving them to be reclaimed. */
  readonly stopTimeoutMs?: number;
  readonly now?: () => number;
}

export interface Consumer {
  stop(): Promise<void>;
}

// The consumer's own timing; its concurrency is CALC_DRAIN_CONCURRENCY's default, from the one literal.
const DEFAULTS = { concurrency: CONFIG_DEFAULTS.CALC_DRAIN_CONCURRENCY, blockMs: 1000, retryBaseMs: 250, retryMaxMs: 10_000, backoffMaxMs: 1000, stopTimeoutMs: 10_000 };
/** Outcomes written per complete() call. */
const MAX_BATCH = 512;

export function startConsumer(options: ConsumerOptions): Consumer {
  const { queue, operation: op, consumer: name, handler, logger, leaseMs } = options;
  const o = {
    concurrency: options.concurrency ?? DEFAULTS.concurrency,
    blockMs: options.blockMs ?? DEFAULTS.blockMs,
    retryBaseMs: options.retryBaseMs ?? DEFAULTS.retryBaseMs,
    retryMaxMs: options.retryMaxMs ?? DEFAULTS.retryMaxMs,
    backoffMaxMs: options.backoffMaxMs ?? DEFAULTS.backoffMaxMs,
    stopTimeoutMs: options.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs,
  };
  const now = options.now ?? Date.now;
  const retryable = (error: unknown) => {
    try {
      return options.isRetryable?.(error) ?? false;
    } catch {
      return false; // a broken predicate must not leave the task without an outcome
    }
  };
  const stopping = new AbortController(); // stop claiming
  const abandon = new AbortController(); // stop waiting for in-flight tasks (stop timed out)
  const log = logger.child({ op, consumer: name });
  const processSpan = `process ${op}`;

  let inFlight = 0;
  const changed = new Signal(); // a slot was released
  const outcomes: Completion[] = [];
  let flushing: Promise<void> | undefined;
  /** Deliveries this consumer holds until their outcome is written or they are given back. */
  const held = new Set<ClaimedTask>();

  const release = (tasks: readonly ClaimedTask[]) => {
    for (const task of tasks) held.delete(task);
    inFlight -= tasks.length;
    changed.notify();
  };

  let beating = false;
  async function heartbeat(): Promise<void> {
    if (beating || held.size === 0) return;
    beating = true;
    try {
      const tasks = [...held];
      for (let i = 0; i < tasks.length; i += MAX_BATCH) await queue.extend(op, name, tasks.slice(i, i + MAX_BATCH), leaseMs);
    } catch (error) {
      log.warn({ err: errorText(error), held: held.size }, 'queue: could not extend the leases of held tasks; will try again');
    } finally {
      beating = false;
    }
  }
  const heartbeatTimer = setInterval(() => void heartbeat(), options.heartbeatMs ?? Math.max(10, Math.floor(leaseMs / 3)));
  heartbeatTimer.unref();

  async function claimLoop(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      // Half the slots per claim, so that one batch is claimed (and run) while the other's
      // outcomes are written: claim and complete overlap in Redis instead of taking turns.
      // Measured with bench/drain-profile.ts, six interleaved pairs: ~37k → ~45k tasks/s
      // (median). Claims of a quarter were slower: each claim has a fixed cost in Redis.
      const half = Math.ceil(o.concurrency / 2);
      const free = o.concurrency - inFlight;
      if (free <= 0 || (free < half && inFlight > 0)) {
        await changed.wait(stopping.signal);
        continue;
      }
      const started = now();
      let tasks: ClaimedTask[];
      try {
        tasks = await queue.claim(op, name, Math.min(free, half), { leaseMs, blockMs: o.blockMs, signal: stopping.signal });
        if (failures > 0) log.info({ failures }, 'queue: claiming works again');
        failures = 0;
      } catch (error) {
        if (failures++ === 0) log.warn({ err: errorText(error) }, 'queue: claim failed; retrying with backoff');
        await sleep(backoff(failures, o.backoffMaxMs), stopping.signal);
        continue;
      }
      for (const task of tasks) {
        held.add(task);
        void run(task);
      }
      // A backend that answers "nothing" at once (blockMs 0, a due time just ahead) must not spin.
      if (tasks.length === 0 && now() - started < 5) await sleep(25, stopping.signal);
    }
  }

  async function run(task: ClaimedTask): Promise<void> {
    inFlight += 1;
    // The messaging conventions' "process" span, under the trace the request was enqueued in.
    const span = startSpan(processSpan, SpanKind.CONSUMER, task, tracingActive(task) ? {
      'messaging.operation.type': 'process',
      'messaging.destination.name': op,
      'messaging.message.id': task.id,
      'calcmesh.deliveries': task.deliveries,
    } : undefined);
    let outcome: Outcome;
    try {
      outcome = await handler(task, span.context);
      span.end(outcome.ok ? undefined : outcome.error);
    } catch (error) {
      span.end(error);
      if (retryable(error)) return giveBack(task, error);
      outcome = { ok: false, error: ticketError(error, task, log) };
    }
    outcomes.push({ task, outcome });
    flushing ??= flush().finally(() => (flushing = undefined));
  }

  async function giveBack(task: ClaimedTask, error: unknown): Promise<void> {
    const retries = task.retries ?? 0;
    const delayMs = Math.min(o.retryBaseMs * 2 ** Math.min(retries, 30), o.retryMaxMs);
    log.debug({ id: task.id, retries, delayMs, err: errorText(error) }, 'queue: task will be retried');
    try {
      await queue.retryLater(op, task, delayMs);
    } catch (failure) {
      // Not given back: its lease expires and it is claimed again then (counted as a delivery).
      log.warn({ id: task.id, err: errorText(failure) }, 'queue: could not give a task back; its lease will expire');
    } finally {
      release([task]);
    }
  }

  /** Writes outcomes in batches until none is left; outcomes arriving meanwhile join the next batch. */
  async function flush(): Promise<void> {
    // Let the handlers that finish in this turn of the event loop join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let failures = 0;
    while (outcomes.length > 0) {
      const batch = outcomes.splice(0, MAX_BATCH);
      try {
        await queue.complete(op, batch);
        failures = 0;
        release(batch.map((c) => c.task));
      } catch (error) {
        outcomes.unshift(...batch);
        if (abandon.signal.aborted) return; // left to be reclaimed after their lease
        if (failures++ === 0) log.warn({ err: errorText(error), pending: outcomes.length }, 'queue: complete failed; retrying');
        await sleep(backoff(failures, o.backoffMaxMs), abandon.signal);
      }
    }
  }

  const loop = claimLoop().catch((error) => log.error({ err: errorText(error) }, 'queue: consumer loop ended unexpectedly'));
  let stopped: Promise<void> | undefined;

  return {
    stop() {
      stopped ??= (async () => {
        stopping.abort();
        await loop;
        const timer = setTimeout(() => abandon.abort(), o.stopTimeoutMs);
        while (inFlight > 0 && !abandon.signal.aborted) await changed.wait(abandon.signal);
        clearTimeout(timer);
        clearInterval(heartbeatTimer);
        if (inFlight > 0) log.warn({ inFlight }, 'queue: stopped with tasks in flight; they will be reclaimed after their lease');
      })();
      return stopped;
    },
  };
}

function ticketError(error: unknown, task: ClaimedTask, log: Logger): TicketError {
  // UNAVAILABLE means "nothing was accepted" and never appears on a ticket: a handler that gives
  // up on an unavailable dependency without asking for a retry ran out of its time budget.
  if (error instanceof CalcError && error.code === 'UNAVAILABLE') return { code: 'DEADLINE_EXCEEDED', message: error.message };
  if (error instanceof CalcError) return { code: error.code, message: error.message };
  log.error({ id: task.id, err: error instanceof Error ? error.stack : String(error) }, 'queue: handler failed unexpectedly');
  return { code: 'INTERNAL', message: 'internal error while computing the request' };
}

const backoff = (failures: number, maxMs: number) => Math.min(50 * 2 ** Math.min(failures, 10), maxMs);

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A level-free notification: `wait()` resolves at the next `notify()` or when `signal` aborts. */
class Signal {
  private waiters: (() => void)[] = [];
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
