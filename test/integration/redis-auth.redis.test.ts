/** Redis with a password, given through the URL as in production: the right one works, a wrong one is UNAVAILABLE. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { createRedisQueue } from '../../src/queue/index.js';
import { CalcError } from '../../src/shared/errors.js';

let redis: TestRedis;
before(async () => { redis = await startRedis({ password: 's3cret/with:odd@chars' }); });
after(() => redis.stop());

test('when the URL carries the password, then the queue works; when it carries a wrong one, then UNAVAILABLE naming the cause', async () => {
  const good = createRedisQueue(redis.url, { resultTtlS: 60, maxDeliveries: 5 });
  try {
    const ticket = await good.enqueue({ id: 't1', client: 'c', requestId: 'r', operation: 'add', num1: 1, num2: 2 });
    assert.equal(ticket.status, 'queued');
  } finally {
    await good.close();
  }
  const bad = createRedisQueue(`redis://:wrong@127.0.0.1:${redis.port}`, { resultTtlS: 60, maxDeliveries: 5 });
  try {
    await assert.rejects(bad.ping(), (error: CalcError) => error.code === 'UNAVAILABLE' && /WRONGPASS|NOAUTH|auth/i.test(error.message));
  } finally {
    await bad.close();
  }
});
