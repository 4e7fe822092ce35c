/**
 * Opening the queue at a component's start: before it listens or reports SERVING, a component
 * makes sure its queue works, and when it cannot, it fails with a message that names the file
 * or the URL and the real cause (EROFS, ENOTDIR, EACCES, SQLITE_BUSY, ECONNREFUSED…).
 */
import { resolve } from 'node:path';
import { StartupError } from '../shared/lifecycle.js';
import { openQueue, type OpenQueueOptions } from './index.js';
import type { DurableQueue } from './types.js';

export interface OpenedQueue {
  readonly queue: DurableQueue;
  /** Where the queue is, for the start-up log line: the SQLite file or the Redis URL (no password). */
  readonly where: string;
}

/** How long a component waits at start for a Redis that is not there yet (restarting, say). */
const REDIS_START_WAIT_MS = 10_000;

export async function openQueueAtStart(
  options: OpenQueueOptions & { startWaitMs?: number },
): Promise<OpenedQueue> {
  const redis = options.redis ?? (options.redisUrl ? { topology: 'standalone' as const, url: options.redisUrl } : undefined);
  const where = !redis
    ? resolve(options.dataDir, 'calcmesh.db')
    : redis.topology === 'sentinel'
      ? `sentinel master ${redis.master} via ${redis.sentinels!.join(',')}`
      : redis.topology === 'cluster' ? `cluster ${redis.nodes!.join(',')}` : redactUrl(redis.url!);
  const what = redis ? `the Redis queue at ${where}` : `the embedded queue at ${where}`;
  let queue: DurableQueue;
  try {
    queue = openQueue(options);
  } catch (error) {
    throw new StartupError(`cannot open ${what}: ${causeOf(error)}`);
  }
  // A gateway with an outbox works without Redis (its journal opened above): it need not wait.
  const outboxed = Boolean(redis && options.outbox);
  const until = Date.now() + (redis && !outboxed ? (options.startWaitMs ?? REDIS_START_WAIT_MS) : 0);
  for (;;) {
    try {
      await queue.ping();
      return { queue, where };
    } catch (error) {
      if (outboxed) return { queue, where: `${where} (not answering yet: the outbox takes requests meanwhile)` };
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
