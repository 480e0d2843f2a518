/**
 * Application templates: the forms of the dashboard's Submit page, listed, read, filled and
 * submitted (through `POST /api/jobs` itself), and stored by admins. The templates, who may do
 * what and the checks: `services/logic/applications.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { WmsError, type ErrorCode } from '../../core/errors.js';
import type { PluginOptions } from '../context.js';
import {
  ApplicationListSchema,
  ApplicationTemplateSchema,
  ref,
  SubmitApplicationAnswerSchema,
  SubmitApplicationRequestSchema,
} from '../../api/index.js';
import {
  getApplication,
  listApplications,
  loadApplications,
  putApplication,
  submitApplication,
  type JdlSubmitter,
} from '../logic/applications.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, requireRole } from './auth.js';

const NameParams = Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }) });
export interface ApplicationsOptions extends PluginOptions {
  /** Directories read in order (later ones replace templates of the same name); default package + dataDir. */
  appsDirs?: string[];
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

export const applicationsPlugin: FastifyPluginAsyncTypebox<ApplicationsOptions> = async (app, { ctx, appsDirs }) => {
  const people = requireRole(ctx, 'user', 'admin', 'site-admin');
  const admins = requireRole(ctx, 'admin');
  await loadApplications(ctx, appsDirs);

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

  app.put(
    '/api/applications/:name',
    {
      onRequest: admins,
      schema: {
        tags: ['applications'],
        summary: 'Create or replace an application template (admins; kept in <dataDir>/apps)',
        operationId: 'putApplication',
        security: BEARER,
        params: NameParams,
        body: Type.Unknown({ description: 'an application template (core/app-template.ts)' }),
        response: { 200: ref(ApplicationTemplateSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => putApplication(ctx, { name: request.params.name, template: request.body }, request.log),
  );
};
