/**
 * The drain rate: a backlog of add tasks written straight through the queue API (as the
 * gateway would have written them), then the add service started, and the depth polled until
 * it is 0. The rate counts from the moment the service accepts connections (its consumer starts
 * right after) to the empty queue; the start-up time is reported beside it.
 */
import { randomUUID } from 'node:crypto';
import { createRedisQueue, createSqliteQueue, type DurableQueue, type NewTask } from '../src/queue/index.js';
import type { ServiceOp } from '../src/shared/operations.js';
import { cpuSnapshot, otherCpuShare, serverCpuMs } from './cpu.js';
import { tcpAccepts } from './procs.js';
import type { QueueLocation, System } from './system.js';

const QUEUE_OPTIONS = { resultTtlS: 3600, maxDeliveries: 5 } as const;

/** A queue handle of the benchmark's own, to fill the backlog and read the depth. */
export function openBenchQueue(location: QueueLocation): DurableQueue {
  return location.redisUrl
    ? createRedisQueue(location.redisUrl, { ...QUEUE_OPTIONS, commandTimeoutMs: 10_000 })
    : createSqliteQueue(location.dataDir, QUEUE_OPTIONS);
}

export async function depthOf(queue: DurableQueue, op: ServiceOp): Promise<number> {
  return (await queue.stats([op]))[op]!.depth;
}

export interface DrainResult {
  readonly tasks: number;
  readonly drained: number;
  readonly tasksPerS: number;
  readonly fillPerS: number;
  readonly startupMs: number;
  readonly drainMs: number;
  readonly timedOut: boolean;
  /** CPU time of the service (start-up included) and of Redis per drained task, in µs. */
  readonly cpuUsPerTask: number;
  /** Share of the machine that other work took while the backlog drained. */
  readonly otherCpu: number;
  /** What the sample of completed tickets showed (first and last task). */
  readonly check: string;
}

export async function measureDrain(options: {
  readonly system: System;
  readonly queue: DurableQueue;
  readonly tasks: number;
  readonly timeoutS: number;
}): Promise<DrainResult> {
  const { system, queue, tasks } = options;
  const before = await depthOf(queue, 'add');
  if (before !== 0) throw new Error(`the add queue holds ${before} tasks before the drain case`);

  const ids: string[] = [];
  const fillStarted = performance.now();
  const BATCH = 500;
  for (let start = 0; start < tasks; start += BATCH) {
    const batch: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(start + BATCH, tasks); i++) {
      const task: NewTask = { id: randomUUID(), client: 'anonymous', requestId: `bench-${i}`, operation: 'add', num1: i, num2: 7 };
      ids.push(task.id);
      batch.push(queue.enqueue(task));
    }
    await Promise.all(batch);
  }
  const fillPerS = tasks / ((performance.now() - fillStarted) / 1000);
  const stored = await depthOf(queue, 'add');
  if (stored !== tasks) throw new Error(`enqueued ${tasks} tasks but the depth is ${stored}`);

  const cpuBefore = cpuSnapshot();
  const spawned = performance.now();
  const service = system.startService('add');
  service.catch(() => undefined); // awaited below; a failed start must not be an unhandled rejection meanwhile
  let listening: number | undefined;
  let depth = tasks;
  const deadline = spawned + options.timeoutS * 1000;
  while (depth > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, listening === undefined ? 10 : 100));
    if (listening === undefined) {
      if (await tcpAccepts(system.port('add'))) listening = performance.now();
      continue;
    }
    depth = await depthOf(queue, 'add');
  }
  const ended = performance.now();
  const cpuAfter = cpuSnapshot();
  await service;
  const from = listening ?? spawned;
  const drained = tasks - depth;
  const drainMs = ended - from;
  return {
    tasks,
    drained,
    tasksPerS: drained / (drainMs / 1000),
    fillPerS,
    startupMs: from - spawned,
    drainMs,
    timedOut: depth > 0,
    cpuUsPerTask: (serverCpuMs(cpuBefore, cpuAfter, { includeStarted: true }) * 1000) / Math.max(1, drained),
    otherCpu: otherCpuShare(cpuBefore, cpuAfter),
    check: await checkTickets(queue, [ids[0]!, ids[ids.length - 1]!], [0, tasks - 1]),
  };
}

/** The first and the last task must be done with the right sums: the drain computed, not just deleted. */
async function checkTickets(queue: DurableQueue, ids: string[], operands: number[]): Promise<string> {
  const verdicts = await Promise.all(ids.map(async (id, i) => {
    const ticket = await queue.getTicket('anonymous', id);
    const expected = operands[i]! + 7;
    return ticket?.status === 'done' && ticket.result === expected ? 'ok' : `ticket ${id}: ${JSON.stringify(ticket)}`;
  }));
  const bad = verdicts.filter((v) => v !== 'ok');
  return bad.length === 0 ? 'first and last tickets done with the right result' : bad.join('; ');
}
