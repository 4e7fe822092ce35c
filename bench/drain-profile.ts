/**
 * Where a drained task's time goes, on Redis: the consumer loop in this process (the handler
 * is the add service's compute), a private redis-server with AOF everysec, and Redis's own
 * accounting (INFO commandstats, INFO cpu) per drained task. Not a benchmark case (the service
 * is not a process of its own): a profile to read beside `npm run bench -- --cases drain-redis`.
 *   node --import tsx bench/drain-profile.ts [tasks] [concurrency] [file.cpuprofile of the drain]
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { createRedisQueue, startConsumer } from '../src/queue/index.js';
import { compute } from '../src/domain/compute.js';
import { createLogger } from '../src/shared/logger.js';
import { startRedis } from '../test/helpers/redis-server.js';

const tasks = Number(process.argv[2] ?? 100_000);
const concurrency = Number(process.argv[3] ?? 256);
const profileFile = process.argv[4] || undefined;

const redis = await startRedis({ appendonly: true, appendfsync: 'everysec' });
const admin = new Redis(redis.url);
const queue = createRedisQueue(redis.url, { resultTtlS: 3600, maxDeliveries: 5, commandTimeoutMs: 10_000 });
try {
  for (let start = 0; start < tasks; start += 500) {
    const batch: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(start + 500, tasks); i++) {
      batch.push(queue.enqueue({ id: randomUUID(), client: 'anonymous', requestId: `p-${i}`, operation: 'add', num1: i, num2: 7 }));
    }
    await Promise.all(batch);
  }
  await admin.config('RESETSTAT');
  const redisCpu = async () => {
    const info = await admin.info('cpu');
    const value = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    return (value('used_cpu_sys') + value('used_cpu_user')) * 1e6;
  };
  const redisBefore = await redisCpu();
  const session = profileFile ? new Session() : undefined;
  session?.connect();
  await session?.post('Profiler.enable');
  await session?.post('Profiler.start');
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const consumer = startConsumer({
    queue, operation: 'add', consumer: 'profile', leaseMs: 30_000, concurrency,
    handler: (task) => ({ ok: true, result: compute('add', task.num1 ?? NaN, task.num2 ?? NaN) }),
    logger: createLogger('profile', 'warn'),
  });
  while ((await queue.stats(['add'])).add!.depth > 0) await new Promise((r) => setTimeout(r, 20));
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const redisUs = (await redisCpu()) - redisBefore;
  if (session) writeFileSync(profileFile!, JSON.stringify((await session.post('Profiler.stop')).profile));
  await consumer.stop();
  console.log(`${tasks} tasks in ${ms.toFixed(0)} ms: ${Math.round(tasks / (ms / 1000))} tasks/s, concurrency ${concurrency}`);
  console.log(`consumer CPU ${((cpu.user + cpu.system) / tasks).toFixed(1)} µs/task, Redis CPU ${(redisUs / tasks).toFixed(1)} µs/task`);
  const stats = await admin.info('commandstats');
  for (const line of stats.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m && m[1] !== 'info' && m[1] !== 'config') {
      console.log(`  ${m[1]!.padEnd(12)} ${(Number(m[2]) / tasks).toFixed(3).padStart(8)} calls/task ${(Number(m[3]) / tasks).toFixed(2).padStart(7)} µs/task`);
    }
  }
} finally {
  await queue.close();
  admin.disconnect();
  await redis.stop();
}
