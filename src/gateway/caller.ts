/**
 * Who is calling: the request id (accepted from X-Request-Id or generated) and the client name
 * (from an API key when CALC_API_KEYS is set, otherwise the one shared client `anonymous`).
 */
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
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

/** Who a request is, or why it is refused before routing (with Retry-After seconds when it may retry). */
export type Identity = { readonly client: string; readonly operator: boolean; readonly refused?: undefined } | { readonly refused: CalcError; readonly retryAfterS?: number };

/** The same check for Fastify's hook and for the hot route (hot-route.ts). */
export type Identify = (url: string, headers: IncomingHttpHeaders, ip: string | undefined) => Identity;

const EVERYONE: Identity = { client: ANONYMOUS, operator: false };

export function createIdentify(options: CallerIdentityOptions): Identify {
  // Hash both sides so that the comparison is constant-time whatever the lengths.
  const digests = [
    ...[...options.apiKeys].map(([key, client]) => ({ digest: sha256(key), client, operator: false })),
    ...[...(options.adminKeys ?? [])].map(([key, client]) => ({ digest: sha256(key), client, operator: true })),
  ];
  const failures = createAuthFailureLimiter(options.authFailuresPerMin ?? DEFAULT_AUTH_FAILURES_PER_MIN);
  return (url, headers, ip) => {
    if (url.length > MAX_URL_CHARS) return { refused: uriTooLong() };
    if (digests.length === 0) return EVERYONE;
    const path = url.split('?', 1)[0] ?? '';
    if (PUBLIC_PATHS.test(path)) return EVERYONE;
    const presentedText = presentedKey(headers);
    // Without client keys everyone is the anonymous client; an operator key still makes an operator.
    const open = options.apiKeys.size === 0;
    if (open && presentedText === undefined) return EVERYONE;
    const address = ip ?? '';
    const blockedS = failures.blockedForS(address);
    if (blockedS > 0) return { refused: new CalcError('RATE_LIMITED', `too many failed authentication attempts from this address; retry in ${blockedS} s`), retryAfterS: blockedS };
    const presented = sha256(presentedText ?? '');
    let match: (typeof digests)[number] | undefined;
    for (const entry of digests) if (timingSafeEqual(entry.digest, presented)) match = entry;
    if (match === undefined) {
      failures.failed(address);
      return { refused: new CalcError('UNAUTHENTICATED', 'a valid API key is required: Authorization: Bearer <key> or X-API-Key') };
    }
    return { client: match.client, operator: match.operator };
  };
}

/** Fastify's side: sets request.client and request.operator, or answers the refusal. Returns the check. */
export function installCallerIdentity(app: FastifyInstance, options: CallerIdentityOptions): Identify {
  app.decorateRequest('client', ANONYMOUS);
  app.decorateRequest('operator', false);
  const identify = createIdentify(options);
  // A callback hook, not an async one: it runs on every request and awaits nothing.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    const identity = identify(request.url, request.headers, request.ip);
    // A refused request is answered here; the chain stops without done().
    if (identity.refused) {
      if (identity.retryAfterS !== undefined) reply.header('retry-after', String(identity.retryAfterS));
      sendError(reply, identity.refused);
      return;
    }
    request.client = identity.client;
    request.operator = identity.operator;
    done();
  });
  return identify;
}

const DEFAULT_AUTH_FAILURES_PER_MIN = 20;

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  // RFC 9110 §11.1: the scheme is case-insensitive (`bearer`, `BEARER`).
  const bearer = typeof auth === 'string' ? /^bearer[ \t]+(.*)$/is.exec(auth) : null;
  if (bearer) return bearer[1]!.trim();
  const header = headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export function callerOf(request: FastifyRequest): Caller {
  return { client: request.client, requestId: request.id, idempotencyKey: idempotencyKeyOf(request.headers), trace: traceOf(request) };
}

export function idempotencyKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const key = headers['idempotency-key'];
  if (key !== undefined && (typeof key !== 'string' || !SAFE_IDEMPOTENCY_KEY.test(key))) {
    throw new CalcError('INVALID_ARGUMENT', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
  }
  return key;
}
