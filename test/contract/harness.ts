/** What the queue contract suite needs from a backend, and small helpers shared by its tests. */
import type { DurableQueue, NewTask } from '../../src/queue/types.js';
import type { ServiceOp } from '../../src/shared/operations.js';

/** A clock that runs with real time, plus whatever the test has jumped forward. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}

export interface QueueHarness {
  /** A fresh queue instance on the same (initially empty) store, as another process would open it. */
  open(): DurableQueue;
  readonly clock: TestClock;
  /**
   * True when leases and retry delays follow the backend's own clock (Redis server time), so the
   * suite must let real time pass; false when they follow `clock` and a jump is enough.
   */
  readonly serverTime: boolean;
  /** Closes every queue it opened and removes the store. */
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly maxDeliveries?: number;
  readonly resultTtlS?: number;
  readonly deadLetterCap?: number;
}

export type HarnessFactory = (options: HarnessOptions) => Promise<QueueHarness>;

let counter = 0;
export function newTask(operation: ServiceOp = 'add', overrides: Partial<NewTask> = {}): NewTask {
  counter += 1;
  const id = `${process.pid}-${Date.now()}-${counter}`;
  return { id, client: 'alice', requestId: `req-${id}`, operation, num1: counter, num2: 2, ...overrides };
}

/** Waiting for a condition without sleeping a fixed time: the one helper all tests share. */
export { waitFor as eventually } from '../helpers/gateway.js';

/** Yields to the event loop a few times: enough for anything already runnable to have run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}
