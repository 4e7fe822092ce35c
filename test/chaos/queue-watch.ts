/**
 * Watches the backlog through the gateway's /v1/status (depth and in-flight per operation) a few
 * times a second, so that a run can say how long each queue took to drain once the failure that
 * filled it was repaired. A sample that could not be taken (gateway or Redis down) is skipped:
 * drain times are measured to the first sample that shows the queues empty, an upper bound.
 */
import { authHeaders, exchange, sleep } from './client.js';

interface Sample {
  readonly at: number;
  /** Operations whose queue was empty (depth 0, nothing in flight) at `at`. */
  readonly empty: ReadonlySet<string>;
  readonly depth: number;
}

export class QueueWatch {
  private readonly samples: Sample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  maxDepth = 0;

  constructor(
    private readonly statusUrl: string,
    private readonly apiKey: string,
    private readonly periodMs = 200,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const at = Date.now();
        const reply = await exchange(this.statusUrl, { headers: authHeaders(this.apiKey) });
        const services = (reply.body as { services?: Record<string, { queue?: { depth: number; inFlight: number } | null }> } | undefined)?.services;
        if (reply.status === 200 && services && Object.values(services).every((s) => s.queue)) {
          const empty = new Set<string>();
          let depth = 0;
          for (const [op, s] of Object.entries(services)) {
            depth += s.queue!.depth;
            if (s.queue!.depth === 0 && s.queue!.inFlight === 0) empty.add(op);
          }
          this.maxDepth = Math.max(this.maxDepth, depth);
          this.samples.push({ at, empty, depth });
        }
        await sleep(Math.max(0, this.periodMs - (Date.now() - at)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Milliseconds from `since` to the first sample with every queue of `ops` empty, if any yet. */
  drainedAfter(since: number, ops: readonly string[]): number | undefined {
    const sample = this.samples.find((s) => s.at >= since && ops.every((op) => s.empty.has(op)));
    return sample ? sample.at - since : undefined;
  }

  /** Of `ops`, the one whose queue was the last to be empty after `since` (the drain's bottleneck). */
  slowest(since: number, ops: readonly string[]): string | undefined {
    let slowest: { op: string; at: number } | undefined;
    for (const op of ops) {
      const at = this.samples.find((s) => s.at >= since && s.empty.has(op))?.at ?? Infinity;
      if (!slowest || at > slowest.at) slowest = { op, at };
    }
    return slowest?.op;
  }

  /** Waits until a sample taken after `since` shows all `ops` empty; resolves to the time it took. */
  async untilDrained(since: number, ops: readonly string[], timeoutMs: number): Promise<number | undefined> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const took = this.drainedAfter(since, ops);
      if (took !== undefined || Date.now() > until) return took;
      await sleep(this.periodMs);
    }
  }
}
