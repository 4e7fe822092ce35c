/** The pure rules of #15's settings and webhooks: operator keys, the allow list, callback checks, the signature, the backoff. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { loadConfig } from '../../src/shared/config.js';
import { checkCallback, signature } from '../../src/gateway/webhooks.js';
import { webhookBackoffMs } from '../../src/queue/webhook-backoff.js';
import { decodeCursor, encodeCursor } from '../../src/queue/history-cursor.js';

test('when CALC_ADMIN_KEYS and the webhook settings are set, then they are parsed, and malformed ones name the variable', () => {
  const config = loadConfig({ CALC_ADMIN_KEYS: 'k1:ops, k2', CALC_WEBHOOK_SECRET: 's', CALC_WEBHOOK_ALLOW: 'Hooks.Example, 127.0.0.1:9000,[::1]:80' });
  assert.deepEqual([...config.adminKeys], [['k1', 'ops'], ['k2', 'operator-2']]);
  assert.deepEqual(config.webhooks.allow, ['hooks.example', '127.0.0.1:9000', '[::1]:80']);
  assert.deepEqual([config.webhooks.maxAttempts, config.webhooks.retryMs, config.webhooks.timeoutMs], [8, 1000, 5000]);
  assert.equal(loadConfig({}).webhooks.secret, undefined);
  assert.throws(() => loadConfig({ CALC_ADMIN_KEYS: ':name' }), /CALC_ADMIN_KEYS/);
  assert.throws(() => loadConfig({ CALC_WEBHOOK_ALLOW: 'http://x/' }), /CALC_WEBHOOK_ALLOW/);
  assert.throws(() => loadConfig({ CALC_WEBHOOK_ATTEMPTS: '0' }), /CALC_WEBHOOK_ATTEMPTS/);
  assert.throws(() => loadConfig({ CALC_EVENTS_POLL_MS: 'often' }), /CALC_EVENTS_POLL_MS/);
});

test('when a callback URL is checked, then only allowed hosts (any port, or the port named) pass, and webhooks off refuses all', () => {
  const config = { secret: 's', allow: ['hooks.example', '127.0.0.1:9000', '[::1]:80'], maxAttempts: 3, retryMs: 10, timeoutMs: 100 };
  assert.equal(checkCallback('https://HOOKS.example:8443/a?b=1', config), 'https://hooks.example:8443/a?b=1');
  assert.equal(checkCallback('http://127.0.0.1:9000/x', config), 'http://127.0.0.1:9000/x');
  assert.equal(checkCallback('http://[::1]/x', config), 'http://[::1]/x', 'the default port counts as named');
  for (const url of ['http://127.0.0.1:9001/x', 'http://127.0.0.1/x', 'http://hooks.example.evil/x', 'ftp://hooks.example/', 'http://u:p@hooks.example/', '/relative', `http://hooks.example/${'a'.repeat(3000)}`]) {
    assert.throws(() => checkCallback(url, config), { code: 'INVALID_ARGUMENT' }, url);
  }
  assert.throws(() => checkCallback('https://hooks.example/', { ...config, secret: undefined }), /webhooks are off/);
});

test('when a body is signed, then the signature is t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">', () => {
  const expected = createHmac('sha256', 'secret').update('1700000000.{"a":1}').digest('hex');
  assert.equal(signature('secret', 1_700_000_000, '{"a":1}'), `t=1700000000,v1=${expected}`);
});

test('when a webhook keeps failing, then its wait doubles from the retry time, at most a minute, never under the attempt time', () => {
  const options = { retryMs: 1000, attemptMs: 1500 };
  assert.deepEqual([1, 2, 3, 4, 10].map((n) => webhookBackoffMs(n, options)), [1500, 2000, 4000, 8000, 60_000]);
});

test('when a history cursor is decoded, then it round-trips, and anything else is INVALID_ARGUMENT', () => {
  const position = { createdAt: 1_733_000_000_123, id: '9f4e469a-b955-4cac-b069-e946017a9e38' };
  assert.deepEqual(decodeCursor(encodeCursor(position)), position);
  for (const bad of ['', '!!', Buffer.from('123:abc').toString('base64url'), 'x'.repeat(500)]) {
    assert.throws(() => decodeCursor(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
});
