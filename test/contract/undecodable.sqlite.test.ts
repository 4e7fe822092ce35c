/** The embedded queue meets a row it cannot decode: it is dead-lettered, and claiming goes on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteQueue } from '../../src/queue/index.js';
import { newTask } from './harness.js';

test('when a stored task cannot be decoded, then it is dead-lettered and the claims of its operation keep working', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calcmesh-sqlite-bad-'));
  const queue = createSqliteQueue(dir, { resultTtlS: 3600, maxDeliveries: 5 });
  try {
    const bad = newTask('add');
    const good = newTask('add');
    await queue.enqueue(bad);
    await queue.enqueue(good);
    // Another writer (an older version, a hand edit) left a payload that is not a task.
    const db = new Database(join(dir, 'calcmesh.db'));
    db.prepare('UPDATE tasks SET payload = ? WHERE ticket_id = ?').run('{"id": not json', bad.id);
    db.close();
    const claimed = await queue.claim('add', 'c1', 10, { leaseMs: 60_000, blockMs: 0 });
    assert.deepEqual(claimed.map((t) => t.id), [good.id]);
    const ticket = await queue.getTicket('alice', bad.id);
    assert.deepEqual([ticket?.status, ticket?.error?.code], ['failed', 'DEAD_LETTER']);
    assert.equal((await queue.stats(['add'])).add?.deadLetters, 1);
  } finally {
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
