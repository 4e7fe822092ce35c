/**
 * The stream client against a real `calcmesh service add` process (the compiled CLI): killed
 * with 500 calls in flight, and paused (SIGSTOP) so that it reads nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUpstreamUnavailable } from '../../src/upstream/index.js';
import { createStreamTargetClient } from '../../src/upstream/stream-client.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));

describe('the Stream rpc against a service process', () => {
  let dataDir: string;
  const started: Spawned[] = [];

  async function startAdd(): Promise<{ proc: Spawned; target: string }> {
    const port = await freePort();
    const proc = spawnGroup(process.execPath, [CLI, 'service', 'add'], {
      ...process.env,
      CALC_SERVICE_HOST: '127.0.0.1',
      CALC_SERVICE_PORT: String(port),
      CALC_METRICS_PORT: '-1',
      CALC_REDIS_URL: '',
      CALC_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    });
    started.push(proc);
    await waitFor(async () => {
      const probe = createStreamTargetClient(`127.0.0.1:${port}`);
      try {
        return (await probe.arithmetic('add', 1, 1, { deadline: Date.now() + 1000, requestId: '' })) === 2 ? true : undefined;
      } catch {
        return undefined;
      } finally {
        probe.close();
      }
    }, 'the add service', 20_000);
    return { proc, target: `127.0.0.1:${port}` };
  }

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'calcmesh-stream-'));
  });
  after(async () => {
    for (const proc of started) {
      try { process.kill(proc.child.pid!, 'SIGCONT'); } catch { /* gone */ }
      await proc.stop('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('when the service is killed with 500 calls in flight, then every call settles (a result or UNAVAILABLE), none is lost or left hanging', async () => {
    const { proc, target } = await startAdd();
    const client = createStreamTargetClient(target);
    try {
      assert.equal(await client.arithmetic('add', 6, 7, { deadline: Date.now() + 2000, requestId: '' }), 13);
      process.kill(proc.child.pid!, 'SIGSTOP'); // so that the 500 are surely in flight when it dies
      const deadline = Date.now() + 60_000; // far away: a call that settles did not just time out
      const calls = Array.from({ length: 500 }, (_, i) => client.arithmetic('add', i, 1, { deadline, requestId: `kill-${i}` }));
      const settled = Promise.allSettled(calls);
      await waitFor(() => (client.stats().inFlight === 500 ? true : undefined), '500 calls written to the stream');
      await proc.stop('SIGKILL');
      const results = await Promise.race([settled, new Promise<'hanging'>((resolve) => setTimeout(() => resolve('hanging'), 10_000).unref())]);
      assert.notEqual(results, 'hanging', 'every call settled within 10 s of the kill');
      let failed = 0;
      for (const [i, r] of (results as PromiseSettledResult<number>[]).entries()) {
        if (r.status === 'fulfilled') assert.equal(r.value, i + 1);
        else {
          failed++;
          assert.ok(isUpstreamUnavailable(r.reason) && r.reason.grpcCode === 14, `call ${i}: ${String(r.reason)}`);
        }
      }
      assert.equal(failed, 500, 'a stopped service answered none of them');
      assert.deepEqual({ inFlight: client.stats().inFlight, waiting: client.stats().waiting }, { inFlight: 0, waiting: 0 });
    } finally {
      client.close();
    }
  });

  test('when the service stops reading (SIGSTOP), then at most maxInFlight calls are written, at most maxWaiting wait, the rest fail at once, and all recover after SIGCONT', async () => {
    const { proc, target } = await startAdd();
    const client = createStreamTargetClient(target, { maxInFlight: 64, maxWaiting: 256 });
    try {
      assert.equal(await client.arithmetic('add', 6, 7, { deadline: Date.now() + 2000, requestId: '' }), 13);
      process.kill(proc.child.pid!, 'SIGSTOP');
      const deadline = Date.now() + 1500;
      const calls = Array.from({ length: 1000 }, (_, i) => client.arithmetic('add', i, 1, { deadline, requestId: '' }).then(
        () => 'answered',
        (error) => (isUpstreamUnavailable(error) ? (error.grpcCode === 4 ? 'deadline' : 'refused') : `other: ${String(error)}`),
      ));
      const stats = client.stats();
      assert.ok(stats.inFlight <= 64, `in flight ${stats.inFlight}`);
      assert.ok(stats.waiting <= 256, `waiting ${stats.waiting}`);
      const outcomes = await Promise.all(calls);
      const count = (what: string) => outcomes.filter((o) => o === what).length;
      assert.equal(count('refused'), 1000 - 64 - 256, 'beyond the bounds a call fails UNAVAILABLE at once');
      assert.equal(count('deadline'), 64 + 256, 'the written and the waiting calls fail at their deadline');
      process.kill(proc.child.pid!, 'SIGCONT');
      const after = await waitFor(async () => {
        const value = await client.arithmetic('add', 2, 2, { deadline: Date.now() + 1000, requestId: '' }).catch(() => undefined);
        return value === 4 ? value : undefined;
      }, 'an answer after SIGCONT', 10_000);
      assert.equal(after, 4);
    } finally {
      client.close();
    }
  });
});
