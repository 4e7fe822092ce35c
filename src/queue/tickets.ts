import type { NewTask, Ticket } from './types.js';

/** The `queued` ticket a task is stored with: what a client reads back until it completes. */
export function queuedTicket(task: NewTask, createdAt: number): Ticket {
  return {
    id: task.id,
    client: task.client,
    status: 'queued',
    operation: task.operation,
    ...(task.num1 !== undefined && { num1: task.num1 }),
    ...(task.num2 !== undefined && { num2: task.num2 }),
    ...(task.expression !== undefined && { expression: task.expression }),
    ...(task.callback !== undefined && { callback: task.callback }),
    createdAt,
  };
}
