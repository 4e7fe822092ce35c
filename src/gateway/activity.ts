/**
 * The latest requests this gateway handled, for the dashboard: a fixed-size ring in memory.
 * Observation only: nothing depends on it, and each gateway shows its own.
 */
export type RequestPath = 'direct' | 'queued' | 'rejected';

export interface ActivityEntry {
  readonly at: number;
  readonly id: string | undefined;
  readonly requestId: string;
  /** Whose request it was: a client sees only its own entries. */
  readonly client: string;
  readonly operation: string;
  /** `6 7` for an operation, the expression for evaluate. */
  readonly input: string;
  readonly path: RequestPath;
  readonly status: number;
  readonly result?: number;
  readonly error?: string;
}

export function createActivityLog(capacity = 50) {
  const ring: ActivityEntry[] = [];
  let next = 0;
  return {
    record(entry: ActivityEntry): void {
      if (ring.length < capacity) ring.push(entry);
      else ring[next] = entry;
      next = (next + 1) % capacity;
    },
    /** Newest first; only this client's entries when `client` is given (undefined: an operator, all). */
    latest(client?: string): ActivityEntry[] {
      const all = [...ring.slice(next), ...ring.slice(0, next)].reverse();
      return client === undefined ? all : all.filter((entry) => entry.client === client);
    },
  };
}

export type ActivityLog = ReturnType<typeof createActivityLog>;
