/**
 * Application templates (core/app-template.ts): the forms of the dashboard's Submit page.
 *
 * - Loaded once when the plugin starts from `<package>/apps/*.yaml`, then `<dataDir>/apps/*.yaml`
 *   (a file there replaces a shipped template of the same name). A file that is not valid YAML
 *   or not a valid template stops the start with its name, line and path.
 * - `GET /api/applications`, `GET /api/applications/:name`: any signed-in person.
 * - `POST /api/applications/:name/submit { values }`: the values are checked with the same core
 *   functions the browser runs (400 WMS_VALIDATION, one problem per parameter, `path` = the
 *   parameter), the JDL rendered and submitted as the caller through `POST /api/jobs` itself
 *   (same checks, limits, sandboxes, metrics and events). Answers `{ jobIds, jdl }`.
 * - `PUT /api/applications/:name` (admins): a template, validated (400 listing every problem
 *   with its path), kept in memory and written to `<dataDir>/apps/<name>.yaml`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from 'typebox';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { renderJdl, templateProblems, type AppTemplate } from '../../core/app-template.js';
import { WmsError, type ErrorCode } from '../../core/errors.js';
import type { PluginOptions } from '../context.js';
import {
  ApplicationListSchema,
  ApplicationTemplateSchema,
  ref,
  SubmitApplicationAnswerSchema,
  SubmitApplicationRequestSchema,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, requireRole } from './auth.js';

/** `apps/` of the package, from source (`services/plugins/`) or built (`dist/services/plugins/`). */
export function defaultAppsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return join(dir, 'apps');
}

/** Parses and validates one template file; throws WMS_CONFIG naming the file, line or path. */
export function parseTemplateFile(file: string, text: string): AppTemplate {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const { line, col } = lines.linePos(first.pos[0]);
    throw new WmsError('WMS_CONFIG', `${file}:${line}:${col}: not valid YAML: ${first.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS();
  const problems = templateProblems(value);
  if (problems.length > 0) throw new WmsError('WMS_CONFIG', `${file}: not a valid application template: ${problems.join('; ')}`);
  return value as AppTemplate;
}

/** Every `*.yaml` / `*.yml` template of a directory (none when it does not exist). */
export async function loadTemplates(dir: string): Promise<AppTemplate[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: AppTemplate[] = [];
  for (const n of names) {
    const file = join(dir, n);
    const t = parseTemplateFile(file, await readFile(file, 'utf8'));
    if (n.replace(/\.ya?ml$/, '') !== t.name) throw new WmsError('WMS_CONFIG', `${file}: name "${t.name}" differs from the file name`);
    out.push(t);
  }
  return out;
}

const NameParams = Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }) });
export interface ApplicationsOptions extends PluginOptions {
  /** Directories read in order (later ones replace templates of the same name); default package + dataDir. */
  appsDirs?: string[];
}

export const applicationsPlugin: FastifyPluginAsyncTypebox<ApplicationsOptions> = async (app, { ctx, appsDirs }) => {
  const people = requireRole(ctx, 'user', 'admin', 'site-admin');
  const admins = requireRole(ctx, 'admin');
  const ownDir = join(ctx.config.dataDir, 'apps');
  const templates = new Map<string, AppTemplate>();
  for (const dir of appsDirs ?? [defaultAppsDir(), ownDir]) {
    for (const t of await loadTemplates(dir)) templates.set(t.name, t);
  }
  const find = (name: string): AppTemplate => {
    const t = templates.get(name);
    if (!t) throw new WmsError('WMS_NOT_FOUND', `no application ${name}`);
    return t;
  };

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
    async () => ({ applications: [...templates.values()].sort((a, b) => a.name.localeCompare(b.name)) }),
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
    async (request) => find(request.params.name),
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
      const t = find(request.params.name);
      const jdl = renderJdl(t, request.body.values); // 400 WMS_VALIDATION with a problem per parameter
      // Through the jobs route itself: the caller's token, the same checks and side effects.
      const res = await app.inject({
        method: 'POST',
        url: '/api/jobs',
        headers: { authorization: request.headers.authorization ?? '', 'content-type': 'application/json' },
        payload: JSON.stringify({ jdl }),
      });
      const body = res.json() as { jobIds?: number[]; code?: ErrorCode; message?: string; problems?: unknown[] };
      if (res.statusCode !== 201) {
        // The jobs route's own error, passed on as it is (its code maps to the same status).
        throw new WmsError(body.code ?? 'WMS_INTERNAL', body.message ?? `submission failed (${res.statusCode})`, {
          details: body.problems ? { problems: body.problems } : undefined,
        });
      }
      request.log.info({ application: t.name, jobs: body.jobIds?.length }, 'application submitted');
      return reply.code(201).send({ jobIds: body.jobIds ?? [], jdl });
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
    async (request) => {
      const doc = request.body;
      const problems = templateProblems(doc);
      const t = doc as AppTemplate;
      if (problems.length === 0 && t.name !== request.params.name)
        problems.push(`name: "${t.name}" differs from the URL's ${request.params.name}`);
      if (problems.length > 0) {
        throw new WmsError('WMS_VALIDATION', `invalid application template: ${problems.join('; ')}`, {
          details: { problems: problems.map((p) => ({ message: p, path: p.slice(0, Math.max(0, p.indexOf(':'))) || '(top)' })) },
        });
      }
      await mkdir(ownDir, { recursive: true });
      const file = join(ownDir, `${t.name}.yaml`);
      await writeFile(`${file}.tmp`, `# Written by PUT /api/applications/${t.name}\n${stringify(t)}`);
      await rename(`${file}.tmp`, file);
      templates.set(t.name, t);
      request.log.info({ application: t.name }, 'application template stored');
      return t;
    },
  );
};
