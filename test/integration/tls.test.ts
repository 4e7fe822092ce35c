/** gRPC over mutual TLS with certificates made at test time: the right client is served, every other is refused. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import type { ServiceHost } from '../../src/services/grpc-host.js';
import { silentLogger } from '../../src/shared/logger.js';
import { grpcCredentials } from '../../src/shared/tls.js';
import { createTargetClient, isUpstreamUnavailable } from '../../src/upstream/index.js';

let certs: TestCerts;
let host: ServiceHost;
let target: string;

before(async () => {
  certs = makeCerts();
  const server = grpcCredentials({ certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.ca }).server;
  host = buildArithmeticServer('add', { logger: silentLogger(), credentials: server });
  target = `127.0.0.1:${await host.listen('127.0.0.1', 0)}`;
});
after(async () => {
  await host?.shutdown({ forceAfterMs: 1000 });
  certs?.remove();
});

const call = async (files: Parameters<typeof grpcCredentials>[0]) => {
  const client = createTargetClient(target, grpcCredentials(files).client);
  try {
    return await client.arithmetic('add', 6, 7, { deadline: Date.now() + 3000, requestId: 'tls' });
  } finally {
    client.close();
  }
};

test('when the client presents a certificate from the CA and verifies the server, then the call is served', async () => {
  assert.equal(await call({ certFile: certs.clientCert, keyFile: certs.clientKey, caFile: certs.ca }), 13);
});

test('when the client speaks plaintext, presents no certificate, or one from another CA, then it is refused', async () => {
  for (const files of [{}, { caFile: certs.ca }, { certFile: certs.strangerCert, keyFile: certs.strangerKey, caFile: certs.ca }]) {
    const error = await call(files).then(() => undefined, (e: unknown) => e);
    assert.ok(isUpstreamUnavailable(error), `refused: ${JSON.stringify(Object.keys(files))} got ${String(error)}`);
  }
});

test('when a TLS setting is half given or unreadable, then loading fails naming it', () => {
  assert.throws(() => grpcCredentials({ certFile: certs.serverCert }), /CALC_TLS_CERT and CALC_TLS_KEY/);
  assert.throws(() => grpcCredentials({ caFile: '/nonexistent/ca.pem' }), /CALC_TLS_CA/);
});
