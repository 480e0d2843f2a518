/**
 * The OpenAPI 3.1 document, generated from the routes' TypeBox schemas: JSON at `/docs/json`,
 * Swagger UI at `/docs`. Registered before the routes so that it sees all of them.
 *
 * The shapes of api/ are added with `addSchema` first (request bodies with the bounds of
 * `withBounds`), and routes point at them with `$ref: "<Name>#"`: fastify validates and
 * serialises through the references, and @fastify/swagger writes each shape once, in
 * `components.schemas`, under its `$id` (`refResolver.buildLocalReference`).
 *
 * Every route declares an `operationId` (its verb: `submitJobs`, `matchJob`...) and its
 * `security`: `BEARER`, or `OPEN` (`[]`) for the few that need no token; the document's default
 * is the bearer token. The websockets are not HTTP operations: services/README.md describes them.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { API_SCHEMAS, REQUEST_SCHEMAS } from '../../api/index.js';
import { withBounds } from './input-guards.js';

/** Every tag a route may use, with what it groups (the document declares each). */
export const TAGS = [
  { name: 'jobs', description: 'Submit, follow and act on jobs' },
  { name: 'applications', description: "Application templates: the dashboard's submission forms" },
  { name: 'matcher', description: 'Hand jobs to pilots; explain why work does or does not flow' },
  { name: 'sandboxes', description: 'tar.gz archives named by their SHA-256' },
  { name: 'job wrapper', description: 'What a running job reports with its job token (status, heartbeats)' },
  { name: 'pilots', description: 'Pilots calling home (settings, registration, status, logs), and site admins reading them' },
  { name: 'sites', description: 'The site registry: sites, computing elements and queues; bans' },
  { name: 'accounting', description: 'Accounting of finished jobs, usage against fair shares, group shares' },
  { name: 'tokens', description: 'Issue and revoke tokens; who the bearer is' },
  { name: 'health', description: 'Probes: liveness and database reachability' },
  { name: 'metrics', description: 'Prometheus metrics' },
] as const;

const DESCRIPTION = [
  'DIRAC-style pilot-job workload management: jobs, matcher, sandboxes, pilots, sites, tokens.',
  '',
  'Every operation needs `Authorization: Bearer <token>` unless it says `security: []` (health, the server clock, the pilot bundle, metrics).',
  'Errors are `{ code, message, problems? }` (the `Error` schema), with the status of the code.',
  '',
  'Two websockets are not described here (OpenAPI has no words for them): `GET /api/events` (job, pilot and site events for the dashboard and `wms job watch`)',
  'and `GET /api/pilots/self/ws` (commands pushed to pilots). See the websocket table in services/README.md of the repository.',
].join('\n');

/** The shared schemas, request bodies bounded like inline ones (see `withBounds`). */
export function addApiSchemas(app: FastifyInstance): void {
  const requests = new Set(REQUEST_SCHEMAS);
  for (const schema of API_SCHEMAS) app.addSchema(requests.has(schema) ? withBounds(schema) : schema);
}

export function registerOpenApi(app: FastifyInstance, version: string): void {
  addApiSchemas(app);
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pilot-wms',
        description: DESCRIPTION,
        version,
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/', description: 'this server' }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearerAuth: [] }],
      tags: [...TAGS],
    },
    // Components named by their `$id` (the default would be def-0, def-1...).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });
}
