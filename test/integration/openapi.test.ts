/** The OpenAPI document is generated from the routes: every served route is in it, and it validates. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { http, type TestGateway } from '../helpers/gateway.js';
import { withGateway } from '../helpers/fixtures.js';

let gateway: TestGateway;
withGateway({}, (g) => (gateway = g));

test('when /openapi.json is fetched, then it is a valid OpenAPI document', async () => {
  const document = (await http(`${gateway.url}/openapi.json`)).body;
  const result = await new Validator().validate(document);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1));
});

test('when the gateway lists its routes, then each one (but the dashboard and docs themselves) is in the document with its error responses', async () => {
  const document = (await http(`${gateway.url}/openapi.json`)).body;
  // The router's own list: the children of `/` in its tree, e.g. "├── v1/results/:id (GET, HEAD)".
  const served = gateway.app
    .printRoutes({ commonPrefix: false })
    .split('\n')
    .map((line) => /^    [├└]── (\S+) \(/.exec(line)?.[1])
    .filter((route): route is string => route !== undefined)
    .map((route) => `/${route.replace(/:(\w+)/g, '{$1}')}`)
    .filter((path) => !/^\/(docs|dashboard|openapi\.json)/.test(path));
  assert.ok(served.length >= 9, `found the routes: ${served.join(' ')}`);
  for (const path of served) assert.ok(document.paths[path], `${path} is served and documented`);
  for (const [path, methods] of Object.entries<Record<string, { responses: Record<string, unknown> }>>(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (['/healthz', '/metrics', '/v1/activity', '/readyz', '/v1/status'].includes(path)) continue;
      assert.ok(Object.keys(operation.responses).some((status) => /^4/.test(status)), `${method} ${path} documents its errors`);
    }
  }
  const op = document.paths['/{op}/{a}/{b}'].get;
  assert.deepEqual(Object.keys(op.responses).sort(), ['200', '202', '4XX', '5XX']);
});

test('when /docs is opened, then Swagger UI is served', async () => {
  const reply = await http(`${gateway.url}/docs`);
  assert.equal(reply.status, 200);
  assert.match(reply.text, /swagger-ui/i);
});
