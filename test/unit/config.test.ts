import { readFileSync } from 'node:fs';
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram } from '../../src/cli/main.js';
import { DEFAULTS, loadClientSettings, loadConfig } from '../../src/shared/config.js';

test('when nothing is set, then the defaults are those of the contract', () => {
  const config = loadConfig({});
  assert.equal(config.gateway.port, 8000);
  assert.equal(config.gateway.host, '127.0.0.1');
  assert.deepEqual(config.targets.add, ['127.0.0.1:50051']);
  assert.deepEqual(config.targets.subtract, ['127.0.0.1:50052']);
  assert.deepEqual(config.targets.multiply, ['127.0.0.1:50053']);
  assert.deepEqual(config.targets.divide, ['127.0.0.1:50054']);
  assert.deepEqual(config.targets.evaluate, ['127.0.0.1:50055']);
  assert.equal(config.deadlineMs, 1000);
  assert.equal(loadConfig({ HOME: '/home/ann' }).dataDir, '/home/ann/.local/state/calcmesh', 'the issue overrides the contract\'s ./data');
  assert.equal(config.redisUrl, undefined);
  assert.equal(config.apiKeys.size, 0);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.targets));
});

test('when targets and keys are set, then they are parsed', () => {
  const config = loadConfig({ CALC_ADD_TARGETS: '10.0.0.2:50051, [::1]:7000', CALC_API_KEYS: 'k1:alice,k2:bob' });
  assert.deepEqual(config.targets.add, ['10.0.0.2:50051', '[::1]:7000']);
  assert.equal(config.apiKeys.get('k2'), 'bob');
});

test('when a setting is malformed, then loading fails naming it', () => {
  assert.throws(() => loadConfig({ CALC_DEADLINE_MS: 'soon' }), /CALC_DEADLINE_MS/);
  assert.throws(() => loadConfig({ CALC_GATEWAY_PORT: '70000' }), /CALC_GATEWAY_PORT/);
  assert.throws(() => loadConfig({ CALC_ADD_TARGETS: 'nohost' }), /CALC_ADD_TARGETS/);
  assert.throws(() => loadConfig({ CALC_API_KEYS: 'justakey' }), /CALC_API_KEYS/);
});

test('when two Redis topologies are set, then loading fails naming both', () => {
  assert.throws(() => loadConfig({ CALC_REDIS_URL: 'redis://127.0.0.1:6379', CALC_REDIS_SENTINELS: '10.0.0.1:26379' }), /CALC_REDIS_URL and CALC_REDIS_SENTINELS/);
  assert.throws(() => loadConfig({ CALC_REDIS_SENTINELS: '10.0.0.1:26379', CALC_REDIS_CLUSTER: '10.0.0.1:7000' }), /CALC_REDIS_SENTINELS and CALC_REDIS_CLUSTER/);
});

test('when one topology is set, then it is read with its passwords, replicas and partitions; without one the queue is embedded', () => {
  assert.equal(loadConfig({}).redis, undefined);
  const sentinel = loadConfig({ CALC_REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2:26379', CALC_REDIS_PASSWORD: 'pw', CALC_REDIS_SENTINEL_PASSWORD: 'spw', CALC_REDIS_MIN_REPLICAS: '1' }).redis;
  assert.deepEqual(sentinel, { topology: 'sentinel', sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], master: 'mymaster', password: 'pw', sentinelPassword: 'spw', minReplicas: 1, partitions: 1 });
  const cluster = loadConfig({ CALC_REDIS_CLUSTER: '10.0.0.1:7000', CALC_QUEUE_PARTITIONS: '4' }).redis;
  assert.deepEqual([cluster?.topology, cluster?.nodes, cluster?.partitions], ['cluster', ['10.0.0.1:7000'], 4]);
  assert.equal(loadConfig({ CALC_REDIS_URL: 'redis://h:1' }).redis?.url, 'redis://h:1');
  assert.throws(() => loadConfig({ CALC_REDIS_SENTINELS: 'nohost' }), /CALC_REDIS_SENTINELS/);
  assert.throws(() => loadConfig({ CALC_REDIS_MIN_REPLICAS: '-1' }), /CALC_REDIS_MIN_REPLICAS/);
});

test('when the outbox is configured, then on/off and its bound are read, on with 100000 by default', () => {
  assert.deepEqual(loadConfig({}).outbox, { enabled: true, max: 100_000 });
  assert.deepEqual(loadConfig({ CALC_OUTBOX: 'off', CALC_OUTBOX_MAX: '5' }).outbox, { enabled: false, max: 5 });
  assert.throws(() => loadConfig({ CALC_OUTBOX: 'maybe' }), /CALC_OUTBOX/);
});

test('when XDG_STATE_HOME is set (absolute), then the default data dir is under it; the working directory never matters', () => {
  assert.equal(loadConfig({ XDG_STATE_HOME: '/var/state', HOME: '/home/ann' }).dataDir, '/var/state/calcmesh');
  assert.equal(loadConfig({ XDG_STATE_HOME: 'relative', HOME: '/home/ann' }).dataDir, '/home/ann/.local/state/calcmesh', 'a relative one is ignored, per the spec');
  assert.equal(loadConfig({ CALC_DATA_DIR: '/srv/q', HOME: '/home/ann' }).dataDir, '/srv/q');
});

describe('one literal of defaults', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const rows = readme.split('\n').filter((line) => line.startsWith('| `'));

  it('when a variable is unset, then loadConfig takes its default from DEFAULTS', () => {
    const config = loadConfig({});
    assert.equal(config.deadlineMs, DEFAULTS.CALC_DEADLINE_MS);
    assert.equal(config.gateway.port, DEFAULTS.CALC_GATEWAY_PORT);
    assert.equal(config.leaseMs, DEFAULTS.CALC_LEASE_MS);
    assert.equal(config.breaker.halfOpenAfterMs, DEFAULTS.CALC_BREAKER_HALF_OPEN_MS);
    assert.equal(config.grpcClient, DEFAULTS.CALC_GRPC_CLIENT);
    assert.equal(config.logLevel, DEFAULTS.LOG_LEVEL);
  });

  it("when the README's configuration table names a variable with a default, then it states that default", () => {
    const wrong = Object.entries(DEFAULTS).filter(([name, value]) =>
      !rows.some((row) => row.split('|')[1]!.includes(`\`${name}\``) && row.split('|')[2]!.includes(String(value))));
    assert.deepEqual(wrong, []);
  });

  it('when the CLI prints its help, then the defaults it names are the literal\'s', () => {
    const program = buildProgram();
    const help = (name: string) => program.commands.find((c) => c.name() === name)!.helpInformation();
    assert.match(help('gateway'), new RegExp(`default ${DEFAULTS.CALC_GATEWAY_PORT}\\b`));
    assert.match(help('gateway'), new RegExp(`default ${DEFAULTS.CALC_DEADLINE_MS.toString()}\\b`));
    assert.ok(help('service').includes(`default ${DEFAULTS.CALC_SERVICE_HOST}`));
  });

  it('when the CLI reads its client settings, then flags aside they come from the environment once, with the gateway default', () => {
    assert.deepEqual(loadClientSettings({}), { gatewayUrl: DEFAULTS.CALC_GATEWAY_URL, apiKey: undefined, adminKey: undefined, colour: true });
    assert.deepEqual(loadClientSettings({ CALC_GATEWAY_URL: 'http://gw:1', CALC_API_KEY: 'k', CALC_ADMIN_KEY: 'a', NO_COLOR: '1' }),
      { gatewayUrl: 'http://gw:1', apiKey: 'k', adminKey: 'a', colour: false });
  });
});
