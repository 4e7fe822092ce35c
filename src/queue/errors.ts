import { CalcError, unavailable, type ErrorCode } from '../shared/errors.js';

/**
 * Every failure of a queue backend is UNAVAILABLE to its callers: for the gateway it means
 * "nothing was accepted", which holds whether a socket broke, a command timed out, Redis refused
 * the write (OOM, MISCONF, LOADING) or SQLite stayed busy or found the disk full. The original
 * error stays in `cause` for the logs.
 */
export function toUnavailable(error: unknown): CalcError {
  if (error instanceof CalcError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const wrapped = unavailable(`queue unavailable: ${message}`);
  Object.defineProperty(wrapped, 'cause', { value: error, enumerable: false });
  return wrapped;
}

export const closedError = (): CalcError => unavailable('queue unavailable: the queue is closed');

/**
 * The error code of a ticket whose task was dead-lettered: its service took it and failed to
 * finish it `maxDeliveries` times (crashed or hung on it), or the backend could not decode it.
 */
export const DEAD_LETTER_CODE: ErrorCode = 'DEAD_LETTER';

/** Dead letters kept per operation: QueueOptions.deadLetterCap, 100,000 by default. */
export function deadLetterCap(cap = 100_000): number {
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`deadLetterCap must be a positive integer, got ${cap}`);
  return cap;
}

export const deadLetterReason = (deliveries: number): string =>
  `gave up after ${deliveries} deliveries: each consumer lost its lease (crashed or hung)`;

export const undecodableReason = (detail: string): string => `the stored task cannot be decoded (${detail.slice(0, 200)})`;
