/**
 * Opening the queue at a component's start: before it listens or reports SERVING, a component
 * makes sure its queue works, and when it cannot, it fails with a message that names the file
 * or the URL and the real cause (EROFS, ENOTDIR, EACCES, SQLITE_BUSY, ECONNREFUSED…).
 */
import { resolve } from 'node:path';
import { StartupError } from '../shared/lifecycle.js';
import { openQueue } from './index.js';
import type { DurableQueue, QueueOptions } from './types.js';

export interface OpenedQueue {
  readonly queue: DurableQueue;
  /** Where the queue is, for the start-up log line: the SQLite file or the Redis URL (no password). */
  readonly where: string;
}

/** How long a component waits at start for a Redis that is not there yet (restarting, say). */
const REDIS_START_WAIT_MS = 10_000;

export async function openQueueAtStart(
  options: { redisUrl?: string | undefined; dataDir: string; startWaitMs?: number } & QueueOptions,
): Promise<OpenedQueue> {
  const where = options.redisUrl ? redactUrl(options.redisUrl) : resolve(options.dataDir, 'calcmesh.db');
  const what = options.redisUrl ? `the Redis queue at ${where}` : `the embedded queue at ${where}`;
  let queue: DurableQueue;
  try {
    queue = openQueue(options);
  } catch (error) {
    throw new StartupError(`cannot open ${what}: ${causeOf(error)}`);
  }
  const until = Date.now() + (options.redisUrl ? (options.startWaitMs ?? REDIS_START_WAIT_MS) : 0);
  for (;;) {
    try {
      await queue.ping();
      return { queue, where };
    } catch (error) {
      if (Date.now() >= until) {
        await queue.close().catch(() => undefined);
        throw new StartupError(`cannot open ${what}: ${causeOf(error)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const inner = cause instanceof Error && !text.includes(cause.message) ? `; ${cause.message}` : '';
  return `${text}${typeof code === 'string' && !text.includes(code) ? ` (${code})` : ''}${inner}`;
}

/** A Redis URL fit for a log line: its password replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(an unparsable Redis URL)';
  }
}
