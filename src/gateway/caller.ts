/**
 * Who is calling: the request id (accepted from X-Request-Id or generated) and the client name
 * (from an API key when CALC_API_KEYS is set, otherwise the one shared client `anonymous`).
 */
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CalcError } from '../shared/errors.js';
import type { Caller } from './dispatch.js';
import { sendError } from './errors.js';

export const ANONYMOUS = 'anonymous';

declare module 'fastify' {
  interface FastifyRequest {
    client: string;
  }
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

export function installCallerIdentity(app: FastifyInstance, apiKeys: ReadonlyMap<string, string>): void {
  app.decorateRequest('client', ANONYMOUS);
  // Hash both sides so that the comparison is constant-time whatever the lengths.
  const digests = [...apiKeys].map(([key, client]) => ({ digest: sha256(key), client }));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.url.length > MAX_URL_CHARS) return sendError(reply, uriTooLong());
    if (digests.length === 0) return;
    const path = request.url.split('?', 1)[0] ?? '';
    if (PUBLIC_PATHS.test(path)) return;
    // Operator routes check operator keys themselves (routes/admin.ts).
    if (path.startsWith('/v1/admin/')) return;
    const presented = sha256(presentedKey(request) ?? '');
    let client: string | undefined;
    for (const entry of digests) if (timingSafeEqual(entry.digest, presented)) client = entry.client;
    if (client === undefined) return sendError(reply, new CalcError('UNAUTHENTICATED', 'a valid API key is required: Authorization: Bearer <key> or X-API-Key'));
    request.client = client;
  });
}

function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export function callerOf(request: FastifyRequest): Caller {
  const key = request.headers['idempotency-key'];
  if (key !== undefined && (typeof key !== 'string' || !SAFE_IDEMPOTENCY_KEY.test(key))) {
    throw new CalcError('INVALID_ARGUMENT', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
  }
  return { client: request.client, requestId: request.id, idempotencyKey: key };
}
