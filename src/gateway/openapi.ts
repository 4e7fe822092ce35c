/**
 * The OpenAPI document, generated from the route schemas, and Swagger UI at /docs. Registered
 * before the routes so that every route is collected.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ERROR_TABLE } from '../shared/errors.js';
import { VERSION } from '../shared/version.js';

export async function installOpenApi(app: FastifyInstance, options: { apiKeys: boolean }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'calcmesh',
        version: VERSION,
        description:
          'A distributed calculator that stays correct when parts of it fail. Each operation is forwarded over gRPC to its ' +
          'own service; when that service is unavailable the request is stored durably and answered 202 with a ticket.\n\n' +
          'Errors are always `{"error":{"code","message"}}`:\n\n' +
          Object.entries(ERROR_TABLE).map(([code, e]) => `- \`${code}\` (${e.http}): ${e.summary}`).join('\n'),
      },
      tags: [
        { name: 'compute', description: 'operations and expressions' },
        { name: 'results', description: 'tickets of queued requests' },
        { name: 'operate', description: 'health, readiness, status, metrics' },
        { name: 'admin', description: 'dead letters, for operators (CALC_ADMIN_KEYS)' },
      ],
      // Operator routes always need a bearer key (CALC_ADMIN_KEYS); client routes only with CALC_API_KEYS.
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          ...(options.apiKeys && { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } }),
        },
      },
      ...(options.apiKeys ? { security: [{ bearer: [] }, { apiKey: [] }] } : {}),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
