/**
 * Who is calling: the request id (accepted from X-Request-Id or generated) and the client name
 * (from an API key when CALC_API_KEYS is set, otherwise the one shared client `anonymous`).
 */
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CalcError } from '../shared/errors.js';
import type { Caller } from './dispatch.js';
import { sendError } from './errors.js';
import { createAuthFailureLimiter } from './auth-failures.js';
import { traceOf } from './tracing.js';

export const ANONYMOUS = 'anonymous';

declare module 'fastify' {
  interface FastifyRequest {
    client: string;
    /** True when the request carries an operator key (CALC_ADMIN_KEYS): it may see every client's activity. */
    operator: boolean;
  }
}

export interface CallerIdentityOptions {
  /** API key -> client name; empty: authentication is off. */
  readonly apiKeys: ReadonlyMap<string, string>;
  /** Operator key -> operator name (CALC_ADMIN_KEYS). */
  readonly adminKeys?: ReadonlyMap<string, string>;
  /** Failed attempts per address and minute before the address is refused (CALC_AUTH_FAILURES_PER_MIN). */
  readonly authFailuresPerMin?: number;
}

const SAFE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const SAFE_IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Fastify's genReqId: a caller's X-Request-Id when it is short and printable, else a UUID. */
export function requestIdFrom(headers: Record<string, string | string[] | undefined>): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

export const MAX_URL_CHARS = 2048;
export const uriTooLong = () => new CalcError('URI_TOO_LONG', `the URL is longer than ${MAX_URL_CHARS} characters`);

/** Routes anyone may call even when API keys are required. */
const PUBLIC_PATHS = /^\/(healthz|readyz|metrics|docs(\/.*)?|openapi\.json|dashboard\/[\w.-]+)?$/;

export function installCallerIdentity(app: FastifyInstance, options: CallerIdentityOptions): void {
  app.decorateRequest('client', ANONYMOUS);
  app.decorateRequest('operator', false);
  // Hash both sides so that the comparison is constant-time whatever the lengths.
  const digests = [
    ...[...options.apiKeys].map(([key, client]) => ({ digest: sha256(key), client, operator: false })),
    ...[...(options.adminKeys ?? [])].map(([key, client]) => ({ digest: sha256(key), client, operator: true })),
  ];
  const failures = createAuthFailureLimiter(options.authFailuresPerMin ?? DEFAULT_AUTH_FAILURES_PER_MIN);
  // A callback hook, not an async one: it runs on every request and awaits nothing.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    const refusal = refuse(request, reply);
    // A refused request is answered here; the chain stops without done().
    if (refusal) sendError(reply, refusal);
    else done();
  });

  /** Why this request is refused before routing, or undefined; sets the caller's identity. */
  function refuse(request: FastifyRequest, reply: FastifyReply): CalcError | undefined {
    if (request.url.length > MAX_URL_CHARS) return uriTooLong();
    if (digests.length === 0) return undefined;
    const path = request.url.split('?', 1)[0] ?? '';
    if (PUBLIC_PATHS.test(path)) return undefined;
    const presentedText = presentedKey(request);
    // Without client keys everyone is the anonymous client; an operator key still makes an operator.
    const open = options.apiKeys.size === 0;
    if (open && presentedText === undefined) return undefined;
    const blockedS = failures.blockedForS(request.ip);
    if (blockedS > 0) {
      reply.header('retry-after', String(blockedS));
      return new CalcError('RATE_LIMITED', `too many failed authentication attempts from this address; retry in ${blockedS} s`);
    }
    const presented = sha256(presentedText ?? '');
    let match: (typeof digests)[number] | undefined;
    for (const entry of digests) if (timingSafeEqual(entry.digest, presented)) match = entry;
    if (match === undefined) {
      failures.failed(request.ip);
      return new CalcError('UNAUTHENTICATED', 'a valid API key is required: Authorization: Bearer <key> or X-API-Key');
    }
    request.client = match.client;
    request.operator = match.operator;
    return undefined;
  }
}

const DEFAULT_AUTH_FAILURES_PER_MIN = 20;

function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  // RFC 9110 §11.1: the scheme is case-insensitive (`bearer`, `BEARER`).
  const bearer = typeof auth === 'string' ? /^bearer[ \t]+(.*)$/is.exec(auth) : null;
  if (bearer) return bearer[1]!.trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export function callerOf(request: FastifyRequest): Caller {
  const key = request.headers['idempotency-key'];
  if (key !== undefined && (typeof key !== 'string' || !SAFE_IDEMPOTENCY_KEY.test(key))) {
    throw new CalcError('INVALID_ARGUMENT', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
  }
  return { client: request.client, requestId: request.id, idempotencyKey: key, trace: traceOf(request) };
}
