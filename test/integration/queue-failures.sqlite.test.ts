/**
 * The embedded queue shared by several processes, as under `npm start`: real child processes on
 * one SQLite file, writing at the same time, and one of them killed -9 holding a lease.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createSqliteQueue } from '../../src/queue/index.js';
import { eventually } from '../contract/harness.js';

const WORKER = new URL('./fixtures/sqlite-worker.ts', import.meta.url).pathname;
const PROCESS_TIMEOUT_MS = 60_000;

interface Worker {
  readonly child: ChildProcess;
  /** The next line the worker prints. */
  line(): Promise<string>;
  /** Resolves when it exits; kills it if it outlives PROCESS_TIMEOUT_MS. */
  readonly exited: Promise<number | null>;
}

const workers = new Set<ChildProcess>();

function spawnWorker(args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  workers.add(child);
  const lines = createInterface({ input: child.stdout! });
  const queued: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => (waiting.length > 0 ? waiting.shift()!(line) : queued.push(line)));
  const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_TIMEOUT_MS);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      workers.delete(child);
      resolve(code);
    }),
  );
  const line = () =>
    queued.length > 0
      ? Promise.resolve(queued.shift()!)
      : Promise.race([
          new Promise<string>((resolve) => waiting.push(resolve)),
          exited.then((code) => Promise.reject(new Error(`worker exited (${code}) before printing`))),
        ]);
  return { child, line, exited };
}

describe('SQLite queue shared by several processes', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'calcmesh-sqlite-mp-'));
  });
  after(() => {
    for (const child of workers) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('when two processes enqueue and claim on one file at once, then there is no busy error and no task is computed twice', async () => {
    const count = 500;
    const pair = [spawnWorker([dir, 'p1', String(count)]), spawnWorker([dir, 'p2', String(count)])];
    for (const worker of pair) assert.equal(await worker.line(), 'ready');
    for (const worker of pair) worker.child.stdin!.end('go\n');
    const reports = await Promise.all(pair.map(async (w) => JSON.parse(await w.line()) as { handled: string[]; errors: string[] }));
    assert.deepEqual(await Promise.all(pair.map((w) => w.exited)), [0, 0]);
    assert.deepEqual(reports.flatMap((r) => r.errors), []);
    const handled = reports.flatMap((r) => r.handled);
    assert.equal(new Set(handled).size, handled.length, 'a task was computed twice');
    assert.equal(handled.length, 2 * count);
    assert.ok(reports.every((r) => r.handled.length > 0), 'one process did all the work: nothing was claimed concurrently');
    const queue = createSqliteQueue(dir, { resultTtlS: 3600, maxDeliveries: 5 });
    try {
      for (const id of ['p1-0', 'p2-499']) {
        const ticket = await queue.getTicket('alice', id);
        assert.deepEqual([ticket?.status, ticket?.result], ['done', Number(id.split('-')[1]) + 1]);
      }
      assert.equal((await queue.takeCompleted('alice', 2 * count)).length, 2 * count);
    } finally {
      await queue.close();
    }
  });

  test('when a process is killed -9 holding a lease, then the task is reclaimed after the lease and done once', async () => {
    const queue = createSqliteQueue(dir, { resultTtlS: 3600, maxDeliveries: 5 });
    try {
      await queue.enqueue({ id: 'crash-1', client: 'alice', requestId: 'r', operation: 'add', num1: 20, num2: 22 });
      const worker = spawnWorker([dir, 'doomed', '10', '--crash-after-claim']);
      assert.equal(await worker.line(), 'claimed crash-1');
      worker.child.kill('SIGKILL');
      await worker.exited;
      const [task] = await eventually(async () => {
        const tasks = await queue.claim('add', 'heir', 10, { leaseMs: 60_000, blockMs: 0 });
        return tasks.length > 0 ? tasks : undefined;
      }, 'the lease to expire');
      assert.deepEqual([task!.id, task!.deliveries], ['crash-1', 2]);
      await queue.complete('add', [{ task: task!, outcome: { ok: true, result: 42 } }]);
      const ticket = await queue.getTicket('alice', 'crash-1');
      assert.deepEqual([ticket?.status, ticket?.result], ['done', 42]);
    } finally {
      await queue.close();
    }
  });
});
