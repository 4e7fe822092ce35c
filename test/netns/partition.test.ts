/**
 * Seven hosts on one machine (deploy/netns-cluster.sh): each component in its own network
 * namespace, over Redis, each started as its systemd unit starts it. Then a network partition: the
 * multiply host's packets are dropped both ways while its link stays up (a hung peer, as behind a
 * broken switch; not a refused connection), and healed. Needs root; fails, never skips, without it.
 *
 * Timings (detection, recovery, drain) are printed as diagnostics; only generous bounds are
 * asserted: this is a behaviour check, not a benchmark.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, waitFor, type HttpReply } from '../helpers/gateway.js';
import { createNetnsCluster, requireNetns, sweepOrphans, type NetnsCluster } from './cluster.js';

const DEADLINE_MS = 500;
/**
 * Shorter than the default 30 s to keep the run short: a task Redis handed out during the partition
 * (a blocked read, or a claim that timed out on the client and reached Redis when the link came
 * back) is taken again only when its lease has expired.
 */
const LEASE_MS = 10_000;
/** Longer than the health watch's grpc-js keepalive (10 s + 5 s, src/upstream/client.ts): the watch loses the replica too. */
const CUT_MS = 16_000;
const ANSWER_BOUND_MS = 5_000;
const RECOVERY_BOUND_MS = 40_000;
const DRAIN_BOUND_MS = LEASE_MS + 30_000;

let cluster: NetnsCluster | undefined;
let others: Background | undefined;
let downDone = false;
/** Every ticket issued, with the result it must end with. */
const tickets: { id: string; expected: number; what: string }[] = [];
let cutAt = 0;

function teardown(): void {
  if (downDone || !cluster) return;
  downDone = true;
  cluster.down();
}

before(async () => {
  requireNetns();
  const swept = sweepOrphans();
  if (swept.length > 0) console.log(`# removed clusters of killed earlier runs: ${swept.join(', ')}`);
  cluster = createNetnsCluster({
    CALC_DEADLINE_MS: String(DEADLINE_MS),
    CALC_LEASE_MS: String(LEASE_MS),
    LOG_LEVEL: 'info',
    // grpc-js says in the logs when keepalive gives a connection up and when it reconnects.
    GRPC_TRACE: 'keepalive,subchannel',
    GRPC_VERBOSITY: 'DEBUG',
  });
  console.log(`# netns cluster ${cluster.prefix} on ${cluster.subnet}.0/24, run dir ${cluster.runDir}`);
  // Hooks do not run on a signal; the namespaces must go anyway.
  process.once('exit', teardown);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      teardown();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  await cluster.up();
});

after(() => {
  others?.stop();
  if (!cluster) return;
  const pids = cluster.pids();
  teardown();
  assert.deepEqual(cluster.leftovers(pids), [], `nothing of ${cluster.prefix} is left`);
});

test('when the seven hosts are up, then each calcmesh host runs its systemd unit\'s ExecStart with the unit\'s Environment= and the EnvironmentFile', () => {
  const c = cluster!;
  const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
  const setting = (unit: string, key: string) => {
    const text = readFileSync(join(root, 'deploy/systemd', unit), 'utf8');
    return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((match) => match[1]!);
  };
  const envFile = readFileSync(join(c.runDir, 'calcmesh.env'), 'utf8').split('\n').filter((line) => /^[A-Za-z_]\w*=/.test(line));
  assert.ok(envFile.some((line) => line.startsWith('CALC_REDIS_URL=redis://')), 'the EnvironmentFile names the MOM');
  for (const host of ['gateway', 'add', 'subtract', 'multiply', 'divide', 'evaluate'] as const) {
    const unit = host === 'gateway' ? 'calcmesh-gateway.service' : 'calcmesh-service@.service';
    const resolve = (line: string) => line.replaceAll('%i', host).replaceAll('%S', join(c.runDir, 'state', host)).replaceAll('/opt/calcmesh', root);
    const pid = readFileSync(join(c.runDir, 'pids', `${host}.pid`), 'utf8').trim();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(cmdline, resolve(setting(unit, 'ExecStart')[0]!).split(' '), `${host}: ExecStart`);
    const environ = new Set(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'));
    const lastWins = new Map([...setting(unit, 'Environment').flatMap((line) => resolve(line).split(' ')), ...envFile].map((line) => [line.slice(0, line.indexOf('=')), line]));
    for (const line of lastWins.values()) assert.ok(environ.has(line), `${host}: ${line.replace(/:\/\/:[^@]*@/, '://:***@')} in its environment`);
    assert.equal(readlinkSync(`/proc/${pid}/cwd`), resolve(setting(unit, 'WorkingDirectory')[0]!), `${host}: WorkingDirectory`);
  }
});

test('when the seven hosts are up, then /readyz reports every service serving and requests cross hosts', async () => {
  const c = cluster!;
  const ready = await waitFor(async () => {
    const reply = await get(`${c.gatewayUrl}/readyz`).catch(() => undefined);
    const services = Object.values(reply?.body?.services ?? {}) as { serving: boolean }[];
    return reply?.status === 200 && services.length === 5 && services.every((s) => s.serving) ? reply : undefined;
  }, 'every service serving in /readyz', 30_000);
  assert.equal(ready.body.queue.backend, 'redis');

  const sum = await get(`${c.gatewayUrl}/add/6/7`);
  assert.deepEqual([sum.status, sum.body.result], [200, 13], sum.text);
  const expression = await evaluate(c.gatewayUrl, '(6+7)*3 - 8/2');
  assert.deepEqual([expression.status, expression.body.result], [200, 35], expression.text);
});

test('when the multiply host is cut off, then multiply is queued within the deadline and every other operation keeps answering 200', { timeout: 120_000 }, async (t) => {
  const c = cluster!;
  others = startOthers(c.gatewayUrl);
  await others.answered(20);
  const watcher = watchMultiply(c.gatewayUrl);

  await c.cut('multiply');
  cutAt = Date.now();
  const latencies: number[] = [];
  const needsMultiply = await evaluate(c.gatewayUrl, '(20+1)*3');
  assert.equal(needsMultiply.status, 202, `an expression that needs multiply is queued: ${needsMultiply.text}`);
  tickets.push({ id: needsMultiply.body.id, expected: 63, what: '(20+1)*3' });
  for (let a = 1; Date.now() - cutAt < CUT_MS; a++) {
    const started = Date.now();
    const reply = await get(`${c.gatewayUrl}/multiply/${a}/7`);
    const ms = Date.now() - started;
    assert.equal(reply.status, 202, `multiply ${a}*7 during the partition: ${reply.text}`);
    assert.ok(ms < ANSWER_BOUND_MS, `multiply ${a}*7 was answered after ${ms} ms (deadline ${DEADLINE_MS} ms)`);
    tickets.push({ id: reply.body.id, expected: a * 7, what: `${a}*7` });
    latencies.push(ms);
    await sleep(200);
  }
  watcher.stop();

  const tally = others.tally();
  assert.deepEqual(tally.bad, [], 'add, subtract, divide and expressions without * answered 200 with the right result');
  t.diagnostic(`partition: ${latencies.length} multiply requests, all 202; latency first ${latencies.slice(0, 4).join('/')} ms, then at most ${Math.max(...latencies.slice(4))} ms`);
  t.diagnostic(`detection: circuit open ${since(watcher.firstOpenAt)} after the cut (${DEADLINE_MS} ms deadline x CALC_BREAKER_FAILURES); health no longer SERVING ${since(watcher.firstUnhealthyAt)}; grpc-js keepalive gave the watch's connection up ${since(grpcTraceAt(c.log('gateway'), c.address('multiply'), /Ping timeout passed without response/, cutAt))}`);
  t.diagnostic(`others: ${tally.ok} answers, all 200`);
});

test('when the link is restored, then direct multiply calls resume and every ticket is done with the right result', { timeout: 120_000 }, async (t) => {
  const c = cluster!;
  assert.ok(cutAt > 0, 'the partition ran');
  await c.heal('multiply');
  const healedAt = Date.now();

  let direct: number | undefined;
  for (let a = 1000; direct === undefined; a++) {
    assert.ok(Date.now() - healedAt < RECOVERY_BOUND_MS, `no direct multiply answer ${RECOVERY_BOUND_MS} ms after the link was restored`);
    const reply = await get(`${c.gatewayUrl}/multiply/${a}/7`);
    if (reply.status === 200) {
      assert.equal(reply.body.result, a * 7);
      direct = Date.now() - healedAt;
    } else {
      assert.equal(reply.status, 202, reply.text);
      tickets.push({ id: reply.body.id, expected: a * 7, what: `${a}*7` });
      await sleep(100);
    }
  }

  const completed: { what: string; afterHealMs: number }[] = [];
  for (const ticket of tickets) {
    const done = await waitFor(async () => {
      const reply = await get(`${c.gatewayUrl}/v1/results/${ticket.id}?wait=5`);
      return reply.body?.status === 'queued' ? undefined : reply.body;
    }, `ticket ${ticket.what} (${ticket.id})`, Math.max(1000, healedAt + DRAIN_BOUND_MS - Date.now()));
    assert.deepEqual([done.status, done.result], ['done', ticket.expected], `ticket ${ticket.what}: ${JSON.stringify(done)}`);
    completed.push({ what: ticket.what, afterHealMs: Date.parse(done.completedAt) - healedAt });
  }
  const tally = others!.stop();
  assert.deepEqual(tally.bad, [], 'add, subtract, divide and expressions without * answered 200 throughout');

  const log = c.log('gateway');
  const changes = circuitChanges(log, healedAt).filter((change) => change.at <= healedAt + direct!);
  t.diagnostic(`recovery: the watch's connection to multiply ready ${since(grpcTraceAt(log, c.address('multiply'), /CONNECTING -> READY/, healedAt), healedAt)} after the heal, circuit closed ${since(changes.find((change) => change.state === 'closed')?.at, healedAt)} (opened again ${changes.filter((change) => change.state === 'open').length} times before the first direct answer), first direct 200 after ${direct} ms`);
  const last = completed.reduce((a, b) => (b.afterHealMs > a.afterHealMs ? b : a));
  t.diagnostic(`drain: ${tickets.length} tickets done with the right result, the last (${last.what}) ${last.afterHealMs} ms after the heal (lease ${LEASE_MS} ms); done per second after the heal: ${histogram(completed.map((c) => c.afterHealMs))}`);
  t.diagnostic(`others: ${tally.ok} answers during the whole run, all 200`);
});

test('when several expressions that need multiply are sent at once during its partition, then an expression without * right after is still answered 200', {
  timeout: 60_000,
}, async () => {
  const c = cluster!;
  await c.cut('multiply');
  try {
    const replies = await Promise.all(['2*1', '2*2', '2*3'].map((e) => evaluate(c.gatewayUrl, e)));
    assert.deepEqual(replies.map((r) => r.status), [202, 202, 202]);
    const plain = await evaluate(c.gatewayUrl, '1+2');
    assert.deepEqual([plain.status, plain.body.result], [200, 3], `1+2 right after: ${plain.text}`);
  } finally {
    await c.heal('multiply');
  }
});

// --- helpers ----------------------------------------------------------------------------------

type Reply = HttpReply;
const get = http;

const evaluate = (base: string, expression: string) =>
  get(`${base}/v1/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expression }) });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


const since = (at: number | undefined, from = cutAt) => (at === undefined ? 'not seen' : `${at - from} ms`);

interface Background {
  answered(count: number): Promise<void>;
  tally(): { ok: number; bad: string[] };
  stop(): { ok: number; bad: string[] };
}

/** add, subtract, divide and expressions without * in turn, each checked for status 200 and its result. */
function startOthers(base: string): Background {
  const calls = [
    (i: number) => ({ what: `add ${i}+1`, send: () => get(`${base}/add/${i}/1`), expected: i + 1 }),
    (i: number) => ({ what: `subtract ${i}-1`, send: () => get(`${base}/subtract/${i}/1`), expected: i - 1 }),
    (i: number) => ({ what: `divide ${i * 4}/4`, send: () => get(`${base}/divide/${i * 4}/4`), expected: i }),
    (i: number) => ({ what: `evaluate (${i}+2)-3/4`, send: () => evaluate(base, `(${i}+2)-3/4`), expected: i + 1.25 }),
  ];
  let stopped = false;
  let ok = 0;
  const bad: string[] = [];
  void (async () => {
    for (let i = 0; !stopped; i++) {
      const call = calls[i % calls.length]!(i);
      const started = Date.now();
      try {
        const reply = await call.send();
        if (reply.status === 200 && reply.body.result === call.expected) ok++;
        else bad.push(`${call.what}: ${reply.status} after ${Date.now() - started} ms ${reply.text.slice(0, 200)}`);
      } catch (error) {
        bad.push(`${call.what}: ${(error as Error).message}`);
      }
      await sleep(50);
    }
  })();
  return {
    answered: (count) => waitFor(async () => (ok >= count ? true : undefined), `${count} answers`, 10_000).then(() => undefined),
    tally: () => ({ ok, bad: [...bad] }),
    stop() {
      stopped = true;
      return { ok, bad: [...bad] };
    },
  };
}

/** Follows the gateway's view of the multiply replica (/v1/status) every 100 ms. */
function watchMultiply(base: string) {
  const seen: { firstOpenAt?: number; firstUnhealthyAt?: number } = {};
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const replica = (await get(`${base}/v1/status`).catch(() => undefined))?.body?.services?.multiply?.replicas?.[0];
      if (replica && cutAt > 0) {
        if (replica.breaker !== 'closed') seen.firstOpenAt ??= Date.now();
        if (replica.health !== 'SERVING') seen.firstUnhealthyAt ??= Date.now();
      }
      await sleep(100);
    }
  })();
  return {
    get firstOpenAt() {
      return seen.firstOpenAt;
    },
    get firstUnhealthyAt() {
      return seen.firstUnhealthyAt;
    },
    stop: () => void (stopped = true),
  };
}

/** "0s:3 10s:65 …": how many of `values` (ms) fall in each second. */
function histogram(values: number[]): string {
  const bins = new Map<number, number>();
  for (const ms of values) bins.set(Math.floor(ms / 1000), (bins.get(Math.floor(ms / 1000)) ?? 0) + 1);
  return [...bins].sort(([a], [b]) => a - b).map(([s, n]) => `${s}s:${n}`).join(' ');
}

/** When grpc-js traced `event` for the connection to `address` (GRPC_TRACE), first at or after `from`. */
function grpcTraceAt(log: string, address: string, event: RegExp, from: number): number | undefined {
  for (const line of log.split('\n')) {
    const match = /^D (\S+) \|.*\| \(\d+\) ([\d.]+):\d+ (.*)$/.exec(line);
    if (match && match[2] === address && event.test(match[3]!) && Date.parse(match[1]!) >= from) return Date.parse(match[1]!);
  }
  return undefined;
}

/** The gateway's circuit changes for multiply at or after `from`, from its log. */
function circuitChanges(log: string, from: number): { state: string; at: number }[] {
  const changes: { state: string; at: number }[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"op":"multiply"') || !line.includes('"msg":"circuit ')) continue;
    const entry = JSON.parse(line) as { time: string; state: string };
    if (Date.parse(entry.time) >= from) changes.push({ state: entry.state, at: Date.parse(entry.time) });
  }
  return changes;
}
