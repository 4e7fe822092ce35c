/** Authentication as an attacker would try it: guessing keys, odd scheme spellings, reading others' activity. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServices, type TestServices } from '../helpers/services.js';
import { http, startGateway, type TestGateway } from '../helpers/gateway.js';

describe('authentication', () => {
  let services: TestServices;
  let gateway: TestGateway;
  before(async () => {
    services = await startServices();
    gateway = await startGateway({
      targets: services.targets,
      apiKeys: { 'key-alice': 'alice', 'key-bob': 'bob' },
      adminKeys: { 'key-ops': 'ops' },
      authFailuresPerMin: 5,
    });
  });
  after(async () => {
    await gateway?.close();
    await services?.close();
  });

  test('when the Authorization scheme is spelled bearer or BEARER, then the key is accepted (RFC 9110: case-insensitive)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const reply = await http(`${gateway.url}/add/1/2`, { headers: { authorization: `${scheme} key-alice` } });
      assert.equal(reply.status, 200, scheme);
    }
  });

  test("when alice reads /v1/activity, then she sees her own requests only; an operator key sees bob's too", async () => {
    await http(`${gateway.url}/multiply/3/4`, { headers: { authorization: 'Bearer key-bob' } });
    await http(`${gateway.url}/subtract/9/1`, { headers: { authorization: 'Bearer key-alice' } });
    const mine = await http(`${gateway.url}/v1/activity`, { headers: { authorization: 'Bearer key-alice' } });
    assert.equal(mine.status, 200);
    assert.ok(mine.body.requests.length > 0);
    assert.ok(mine.body.requests.every((r: { client: string }) => r.client === 'alice'), JSON.stringify(mine.body.requests));
    assert.ok(!mine.body.requests.some((r: { operation: string }) => r.operation === 'multiply'));
    const all = await http(`${gateway.url}/v1/activity`, { headers: { authorization: 'Bearer key-ops' } });
    assert.ok(all.body.requests.some((r: { client: string; operation: string }) => r.client === 'bob' && r.operation === 'multiply'));
  });

  // Last in this suite: it blocks the loopback address for the rest of the minute.
  test('when one address guesses wrong keys, then after the limit it is refused 429 with Retry-After, even with a right key', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await http(`${gateway.url}/add/1/2`, { headers: { authorization: `Bearer guess-${i}` } })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    const right = await http(`${gateway.url}/add/1/2`, { headers: { authorization: 'Bearer key-alice' } });
    assert.deepEqual([right.status, right.body.error.code], [429, 'RATE_LIMITED']);
    assert.match(right.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal((await http(`${gateway.url}/healthz`)).status, 200, 'health stays public');
  });
});
