/**
 * The OpenAPI document, generated from the routes' TypeBox schemas: JSON at `/docs/json`,
 * Swagger UI at `/docs`. Registered before the routes so that it sees all of them.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export function registerOpenApi(app: FastifyInstance, version: string): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'pilot-wms',
        description:
          'DIRAC-style pilot-job workload management: jobs, matcher, sandboxes, tokens. ' +
          'Every route but /api/health needs "Authorization: Bearer <token>". ' +
          'Errors are { code, message, problems? }.',
        version,
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      tags: [
        { name: 'jobs', description: 'submit, follow and act on jobs' },
        { name: 'matcher', description: 'hand jobs to pilots; explain matching' },
        { name: 'sandboxes', description: 'tar.gz archives named by SHA-256' },
        { name: 'tokens', description: 'identity' },
        { name: 'health', description: 'probes' },
      ],
    },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });
}
