/**
 * Application templates: the forms of the dashboard's Submit page, listed, read, filled and
 * submitted (through `POST /api/jobs` itself), and stored or removed by admins. A template is
 * stored as YAML text (`content-type: application/yaml` or `text/yaml`, kept as written) or as
 * JSON, at most APP_TEMPLATE_MAX_BYTES. The templates (in the database), who may do what and the
 * checks: `services/logic/applications.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { WmsError, type ErrorCode } from '../../core/errors.js';
import type { Principal } from '../../core/identity.js';
import type { PluginOptions } from '../context.js';
import {
  ApplicationListSchema,
  ApplicationRemovedSchema,
  ApplicationTemplateSchema,
  ApplicationYamlSchema,
  ref,
  SubmitApplicationAnswerSchema,
  SubmitApplicationRequestSchema,
} from '../../api/index.js';
import {
  APP_TEMPLATE_MAX_BYTES,
  deleteApplication,
  getApplication,
  getApplicationYaml,
  installShippedApplications,
  listApplications,
  putApplication,
  submitApplication,
  type JdlSubmitter,
} from '../logic/applications.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

/** The media types of a template given as YAML text. */
const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml'];

const NameParams = Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }) });
export interface ApplicationsOptions extends PluginOptions {
  /** Where the shipped templates are (inserted when missing at start); default the package's `apps/`. */
  appsDir?: string;
}

/** Who stored a template, as `updated_by` keeps it: `user@vo`. */
function whoOf(p: Principal): string {
  return `${p.user}@${p.vo}`;
}

/**
 * Submits through the jobs route itself, with the caller's token: the same checks and side
 * effects. Its error is passed on as it is (its code maps to the same status).
 */
function throughJobsRoute(app: FastifyInstance, authorization: string | undefined): JdlSubmitter {
  return async (jdl) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/jobs',
      headers: { authorization: authorization ?? '', 'content-type': 'application/json' },
      payload: JSON.stringify({ jdl }),
    });
    const body = res.json() as { jobIds?: number[]; code?: ErrorCode; message?: string; problems?: unknown[] };
    if (res.statusCode !== 201) {
      throw new WmsError(body.code ?? 'WMS_INTERNAL', body.message ?? `submission failed (${res.statusCode})`, {
        details: body.problems ? { problems: body.problems } : undefined,
      });
    }
    return body.jobIds ?? [];
  };
}

export const applicationsPlugin: FastifyPluginAsyncTypebox<ApplicationsOptions> = async (app, { ctx, appsDir }) => {
  const people = requireRole(ctx, 'user', 'admin', 'site-admin');
  const admins = requireRole(ctx, 'admin');
  await installShippedApplications(ctx, appsDir, app.log);
  // A YAML body reaches the route as its text (these routes only: the plugin's own scope).
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.get(
    '/api/applications',
    {
      onRequest: people,
      schema: {
        tags: ['applications'],
        summary: 'The application templates, by name',
        operationId: 'listApplications',
        security: BEARER,
        response: { 200: ref(ApplicationListSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => listApplications(ctx),
  );

  app.get(
    '/api/applications/:name',
    {
      onRequest: people,
      schema: {
        tags: ['applications'],
        summary: 'One application template',
        operationId: 'getApplication',
        security: BEARER,
        params: NameParams,
        response: { 200: ref(ApplicationTemplateSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => getApplication(ctx, request.params),
  );

  app.post(
    '/api/applications/:name/submit',
    {
      onRequest: requireRole(ctx, 'user', 'admin'),
      schema: {
        tags: ['applications'],
        summary: 'Fill an application template and submit the JDL it makes, as the caller',
        operationId: 'submitApplication',
        security: BEARER,
        params: NameParams,
        body: ref(SubmitApplicationRequestSchema),
        response: { 201: ref(SubmitApplicationAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS, 404, 413) },
      },
    },
    async (request, reply) => {
      const input = { ...request.params, ...request.body };
      return reply.code(201).send(await submitApplication(ctx, input, throughJobsRoute(app, request.headers.authorization), request.log));
    },
  );

  app.get(
    '/api/applications/:name/yaml',
    {
      onRequest: people,
      schema: {
        tags: ['applications'],
        summary: 'One application template as applied: its YAML text, who stored it and when',
        operationId: 'getApplicationYaml',
        security: BEARER,
        params: NameParams,
        response: { 200: ref(ApplicationYamlSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => getApplicationYaml(ctx, request.params),
  );

  app.put(
    '/api/applications/:name',
    {
      onRequest: admins,
      bodyLimit: APP_TEMPLATE_MAX_BYTES,
      schema: {
        tags: ['applications'],
        summary: 'Create or replace an application template (admins), given as YAML text or JSON',
        description:
          'A YAML body (application/yaml or text/yaml) is kept as written, comments and all; one that does not parse is ' +
          'a 400 with its line and column. A template that is not valid is a 400 listing every problem with its path. ' +
          `At most ${APP_TEMPLATE_MAX_BYTES / 1024} KiB. Every replica serves it at once (it is stored in the database).`,
        operationId: 'putApplication',
        security: BEARER,
        consumes: ['application/json', ...YAML_TYPES],
        params: NameParams,
        body: Type.Unknown({ description: 'an application template (core/app-template.ts), as JSON or as YAML text' }),
        response: { 200: ref(ApplicationTemplateSchema), ...errorResponses(400, ...AUTH_ERRORS, 413) },
      },
    },
    async (request) => putApplication(ctx, { name: request.params.name, body: request.body, by: whoOf(identityOf(request)) }, request.log),
  );

  app.delete(
    '/api/applications/:name',
    {
      onRequest: admins,
      schema: {
        tags: ['applications'],
        summary: 'Remove an application template (admins)',
        operationId: 'deleteApplication',
        security: BEARER,
        params: NameParams,
        response: { 200: ref(ApplicationRemovedSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => deleteApplication(ctx, { name: request.params.name, by: whoOf(identityOf(request)) }, request.log),
  );
};
