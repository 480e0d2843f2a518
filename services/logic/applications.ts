/**
 * Application templates (core/app-template.ts): the forms of the dashboard's Submit page
 * (routes: `services/plugins/applications.ts`).
 *
 * - Loaded once when the service starts from `<package>/apps/*.yaml`, then
 *   `<dataDir>/apps/*.yaml` (a file there replaces a shipped template of the same name). A file
 *   that is not valid YAML or not a valid template stops the start with its name, line and path.
 * - Listing and reading: any signed-in person.
 * - Submitting `{ values }` (users and admins): the values are checked with the same core
 *   functions the browser runs (400 WMS_VALIDATION, one problem per parameter, `path` = the
 *   parameter), the JDL rendered and submitted as the caller through `POST /api/jobs` itself
 *   (same checks, limits, sandboxes, metrics and events). Answers `{ jobIds, jdl }`.
 * - Storing (admins): a template, validated (400 listing every problem with its path), kept in
 *   memory and written to `<dataDir>/apps/<name>.yaml`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { renderJdl, templateProblems, type AppTemplate } from '../../core/app-template.js';
import { WmsError } from '../../core/errors.js';
import type { SubmitApplicationAnswer, SubmitApplicationRequest } from '../../api/index.js';
import type { ServiceContext } from '../context.js';

/** `apps/` of the package, from source (`services/logic/`) or built (`dist/services/logic/`). */
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

/** The templates of each service context (one per app), by name. */
const templatesByContext = new WeakMap<ServiceContext, Map<string, AppTemplate>>();

/** Where admins' templates are written: `<dataDir>/apps`. */
function ownDir(ctx: ServiceContext): string {
  return join(ctx.config.dataDir, 'apps');
}

/** The templates loaded for `ctx` (none before `loadApplications`). */
function templatesOf(ctx: ServiceContext): Map<string, AppTemplate> {
  let templates = templatesByContext.get(ctx);
  if (!templates) {
    templates = new Map();
    templatesByContext.set(ctx, templates);
  }
  return templates;
}

/**
 * Loads the templates of `dirs` in order (later ones replace earlier ones of the same name;
 * default: the package's, then dataDir's), replacing those `ctx` had.
 */
export async function loadApplications(ctx: ServiceContext, dirs: readonly string[] = [defaultAppsDir(), ownDir(ctx)]): Promise<void> {
  const templates = new Map<string, AppTemplate>();
  for (const dir of dirs) {
    for (const t of await loadTemplates(dir)) templates.set(t.name, t);
  }
  templatesByContext.set(ctx, templates);
}

/** Every template, by name. */
export function listApplications(ctx: ServiceContext): { applications: AppTemplate[] } {
  return { applications: [...templatesOf(ctx).values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** The template `name`; 404 when there is none. */
export function getApplication(ctx: ServiceContext, input: { name: string }): AppTemplate {
  const t = templatesOf(ctx).get(input.name);
  if (!t) throw new WmsError('WMS_NOT_FOUND', `no application ${input.name}`);
  return t;
}

/** Submits a JDL as the caller through the jobs route: the new job ids, or that route's refusal thrown. */
export type JdlSubmitter = (jdl: string) => Promise<number[]>;

/** Fills the template `name` with `values` (400 with a problem per parameter) and submits the JDL it makes. */
export async function submitApplication(
  ctx: ServiceContext,
  input: { name: string } & SubmitApplicationRequest,
  submit: JdlSubmitter,
  log?: Pick<Logger, 'info'>,
): Promise<SubmitApplicationAnswer> {
  const t = getApplication(ctx, input);
  const jdl = renderJdl(t, input.values); // 400 WMS_VALIDATION with a problem per parameter
  const jobIds = await submit(jdl);
  log?.info({ application: t.name, jobs: jobIds.length }, 'application submitted');
  return { jobIds, jdl };
}

/** Validates `template` (400 listing every problem with its path), which must be named `name`. */
function checkTemplate(name: string, template: unknown): AppTemplate {
  const problems = templateProblems(template);
  const t = template as AppTemplate;
  if (problems.length === 0 && t.name !== name) problems.push(`name: "${t.name}" differs from the URL's ${name}`);
  if (problems.length > 0) {
    throw new WmsError('WMS_VALIDATION', `invalid application template: ${problems.join('; ')}`, {
      details: { problems: problems.map((p) => ({ message: p, path: p.slice(0, Math.max(0, p.indexOf(':'))) || '(top)' })) },
    });
  }
  return t;
}

/** Stores a template (created or replaced): kept in memory and written to `<dataDir>/apps/<name>.yaml`. */
export async function putApplication(
  ctx: ServiceContext,
  input: { name: string; template: unknown },
  log?: Pick<Logger, 'info'>,
): Promise<AppTemplate> {
  const t = checkTemplate(input.name, input.template);
  const dir = ownDir(ctx);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${t.name}.yaml`);
  await writeFile(`${file}.tmp`, `# Written by PUT /api/applications/${t.name}\n${stringify(t)}`);
  await rename(`${file}.tmp`, file);
  templatesOf(ctx).set(t.name, t);
  log?.info({ application: t.name }, 'application template stored');
  return t;
}
