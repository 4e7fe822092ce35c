import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CalcError, ERROR_TABLE, type ErrorCode } from '../../src/shared/errors.js';
import { fromGrpcError, isUpstreamUnavailable, UNAVAILABLE_STATUSES } from '../../src/upstream/errors.js';
import { ERROR_CODE_KEY } from '../../src/domain/wire.js';
import { toCalcError } from '../../src/gateway/errors.js';
import { deadLetterCap } from '../../src/queue/errors.js';

const grpcError = (code: GrpcStatus, details = 'x', metadata = new Metadata()): ServiceError =>
  Object.assign(new Error(details), { code, details, metadata });

test('when the error table is read, then every code is unique, upper snake case and documented in the README', () => {
  const codes = Object.keys(ERROR_TABLE);
  assert.equal(new Set(codes).size, codes.length);
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const code of codes) {
    assert.match(code, /^[A-Z_]+$/);
    assert.ok(readme.includes(`\`${code}\``), `README does not document ${code}`);
  }
});

test('when the contract codes are mapped, then they carry the contract HTTP statuses', () => {
  const expected: Record<string, number> = {
    INVALID_ARGUMENT: 400, DOMAIN_ERROR: 422, NOT_FOUND: 404, PAYLOAD_TOO_LARGE: 413,
    UNAUTHENTICATED: 401, RATE_LIMITED: 429, UNAVAILABLE: 503,
  };
  for (const [code, http] of Object.entries(expected)) assert.equal(new CalcError(code as ErrorCode, 'm').httpStatus, http);
});

test('when a service answers UNAVAILABLE or DEADLINE_EXCEEDED, then the caller sees an availability failure, and only then', () => {
  for (const code of Object.values(GrpcStatus).filter((v): v is GrpcStatus => typeof v === 'number')) {
    const mapped = fromGrpcError(grpcError(code), 'host:1');
    assert.equal(isUpstreamUnavailable(mapped), code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus[code]);
    assert.equal(UNAVAILABLE_STATUSES.has(code), isUpstreamUnavailable(mapped), `UNAVAILABLE_STATUSES and the mapping disagree on ${GrpcStatus[code]}`);
  }
});

test('when a peer answers UNAVAILABLE with the calcmesh code, then it is a dependency down: queue it, but the peer is alive', () => {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, 'UNAVAILABLE');
  const fromPeer = fromGrpcError(grpcError(GrpcStatus.UNAVAILABLE, 'multiply down', metadata), 't');
  assert.ok(isUpstreamUnavailable(fromPeer) && fromPeer.origin === 'peer' && !fromPeer.replicaFailed);
  const transport = fromGrpcError(grpcError(GrpcStatus.UNAVAILABLE, 'connection refused'), 't');
  assert.ok(isUpstreamUnavailable(transport) && transport.replicaFailed);
});

test('when a service answers an argument or domain error, then it maps to INVALID_ARGUMENT or DOMAIN_ERROR', () => {
  assert.equal(fromGrpcError(grpcError(GrpcStatus.INVALID_ARGUMENT), 't').code, 'INVALID_ARGUMENT');
  assert.equal(fromGrpcError(grpcError(GrpcStatus.FAILED_PRECONDITION), 't').code, 'DOMAIN_ERROR');
  assert.equal(fromGrpcError(grpcError(GrpcStatus.UNIMPLEMENTED), 't').code, 'UPSTREAM_ERROR');
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, 'DOMAIN_ERROR');
  assert.equal(fromGrpcError(grpcError(GrpcStatus.UNKNOWN, 'd', metadata), 't').code, 'DOMAIN_ERROR');
});

test('when Fastify raises its own errors, then they become contract codes, and anything unknown is INTERNAL', () => {
  const fastifyError = (props: object) => Object.assign(new Error('m'), props);
  assert.equal(toCalcError(fastifyError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).code, 'PAYLOAD_TOO_LARGE');
  assert.equal(toCalcError(fastifyError({ validation: [], statusCode: 400 })).code, 'INVALID_ARGUMENT');
  assert.equal(toCalcError(Object.assign(new SyntaxError('bad'), { statusCode: 400 })).code, 'INVALID_ARGUMENT');
  assert.equal(toCalcError(fastifyError({ statusCode: 429 })).code, 'RATE_LIMITED');
  const internal = toCalcError(new TypeError('x is undefined'));
  assert.equal(internal.code, 'INTERNAL');
  assert.equal(internal.message, 'internal error');
});

test('when a dead-letter cap is given, then only a positive integer is taken, and 100,000 is the default', () => {
  assert.equal(deadLetterCap(), 100_000);
  assert.equal(deadLetterCap(2), 2);
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => deadLetterCap(bad), RangeError, String(bad));
});
