import type { FastifyInstance } from 'fastify';

/** The dashboard at `/` (placeholder until the page lands). */
export function dashboardRoutes(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html><title>calcmesh</title><h1>calcmesh</h1>'));
}
