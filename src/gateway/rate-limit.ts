/**
 * A per-client rate limit (CALC_RATE_LIMIT requests per second): by API-key client when keys
 * are on, by address otherwise. It runs after authentication, so a client cannot spend another's
 * budget; health, readiness and metrics are never limited. Each gateway counts on its own.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { CalcError } from '../shared/errors.js';
import { ANONYMOUS } from './caller.js';

const UNLIMITED = /^\/(healthz|readyz|metrics)$/;

export async function installRateLimit(app: FastifyInstance, perSecond: number): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: perSecond,
    timeWindow: 1000,
    hook: 'preHandler',
    keyGenerator: (request) => (request.client === ANONYMOUS ? `ip:${request.ip}` : `client:${request.client}`),
    allowList: (request) => UNLIMITED.test(request.url.split('?', 1)[0] ?? ''),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new CalcError('RATE_LIMITED', `more than ${context.max} requests per second; retry in ${context.after}`), { statusCode: 429 }),
  });
}
