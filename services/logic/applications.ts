/**
 * Application templates (core/app-template.ts): the forms of the dashboard's Submit page
 * (routes: `services/plugins/applications.ts`), kept in the table `app_templates`
 * (db/queries/applications.ts) that every replica reads: nothing is held in a process, so a
 * template applied through one replica is listed by every other at once.
 *
 * - When the service starts, the package's `apps/*.yaml` are inserted when missing, never over
 *   a row of that name (an admin's edit of a shipped template stays). A shipped file that is
 *   not valid YAML or not a valid template stops the start with its name, line and path.
 *   Templates of the former `<dataDir>/apps/` are no longer read: the start says so in a
 *   warning naming them (apply them with `wms app apply FILE`).
 * - Listing and reading: any signed-in person; the YAML as applied too (`wms app show`).
 * - Submitting `{ values }` (users and admins): the values are checked with the same core
 *   functions the browser runs (400 WMS_VALIDATION, one problem per parameter, `path` = the
 *   parameter), the JDL rendered and submitted as the caller through `POST /api/jobs` itself
 *   (same checks, limits, sandboxes, metrics and events). Answers `{ jobIds, jdl }`.
 * - Storing (admins): a template as YAML text (kept as written, comments and all) or as a JSON
 *   value (kept as the YAML it makes); YAML that does not parse is a 400 with its line and
 *   column, a template that is not valid a 400 listing every problem with its path; stored in
 *   one statement, so nothing is half-written.
 * - Removing (admins): 404 for an unknown name, with the nearest known one.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { renderJdl, templateProblems, type AppTemplate } from '../../core/app-template.js';
import { closestName } from '../../core/closest-name.js';
import { WmsError } from '../../core/errors.js';
import type { ApplicationYaml, SubmitApplicationAnswer, SubmitApplicationRequest } from '../../api/index.js';
import {
  deleteAppTemplate,
  getAppTemplate,
  insertAppTemplateIfMissing,
  listAppTemplates,
  upsertAppTemplate,
  type AppTemplateRow,
} from '../../db/index.js';
import type { ServiceContext } from '../context.js';

/** The largest template body the API takes (YAML or JSON). */
export const APP_TEMPLATE_MAX_BYTES = 256 * 1024;

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

/** Where YAML text does not parse: its first error, 1-based line and column. */
interface YamlProblem {
  message: string;
  line: number;
  column: number;
}

/** The value of a YAML text, or where it does not parse. */
function parseYaml(text: string): { value: unknown } | { problem: YamlProblem } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const { line, col } = lines.linePos(first.pos[0]);
    return { problem: { message: first.message.split('\n')[0] ?? 'not valid YAML', line, column: col } };
  }
  try {
    return { value: doc.toJS() };
  } catch (e) {
    // e.g. more aliases than allowed (a "billion laughs" document)
    return { problem: { message: (e as Error).message, line: 1, column: 1 } };
  }
}

/** Parses and validates one template file; throws WMS_CONFIG naming the file, line or path. */
export function parseTemplateFile(file: string, text: string): AppTemplate {
  const parsed = parseYaml(text);
  if ('problem' in parsed) {
    const { line, column, message } = parsed.problem;
    throw new WmsError('WMS_CONFIG', `${file}:${line}:${column}: not valid YAML: ${message}`);
  }
  const problems = templateProblems(parsed.value);
  if (problems.length > 0) throw new WmsError('WMS_CONFIG', `${file}: not a valid application template: ${problems.join('; ')}`);
  return parsed.value as AppTemplate;
}

/** One template file: its validated value and its text. */
export interface TemplateFile {
  file: string;
  template: AppTemplate;
  yaml: string;
}

/** The `*.yaml` / `*.yml` file names of a directory, sorted (none when it does not exist). */
async function yamlFilesOf(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Every template file of a directory, validated (none when it does not exist). */
export async function loadTemplates(dir: string): Promise<TemplateFile[]> {
  const out: TemplateFile[] = [];
  for (const n of await yamlFilesOf(dir)) {
    const file = join(dir, n);
    const yaml = await readFile(file, 'utf8');
    const template = parseTemplateFile(file, yaml);
    if (n.replace(/\.ya?ml$/, '') !== template.name) {
      throw new WmsError('WMS_CONFIG', `${file}: name "${template.name}" differs from the file name`);
    }
    out.push({ file, template, yaml });
  }
  return out;
}

/**
 * At start: inserts the templates of `dir` (default: the package's `apps/`) that the table does
 * not have (several replicas may start at once: each insert is one statement). Answers the names
 * inserted. Warns about templates left in the former `<dataDir>/apps/`, which are not read.
 */
export async function installShippedApplications(
  ctx: ServiceContext,
  dir: string = defaultAppsDir(),
  log?: Pick<Logger, 'info' | 'warn'>,
): Promise<string[]> {
  const inserted: string[] = [];
  for (const { template, yaml } of await loadTemplates(dir)) {
    if (await insertAppTemplateIfMissing(ctx.handle, { name: template.name, yaml, template, source: 'package' })) {
      inserted.push(template.name);
    }
  }
  if (inserted.length > 0) log?.info({ applications: inserted }, 'shipped application templates inserted');
  const former = join(ctx.config.dataDir, 'apps');
  const left = await yamlFilesOf(former);
  if (left.length > 0) {
    log?.warn(
      { dir: former, files: left },
      `application templates in ${former} are no longer read (templates live in the database): apply each with "wms app apply FILE"`,
    );
  }
  return inserted;
}

/** Every template, by name. */
export async function listApplications(ctx: ServiceContext): Promise<{ applications: AppTemplate[] }> {
  const found = await listAppTemplates(ctx.handle);
  return { applications: found.map((r) => r.template as AppTemplate) };
}

/** The 404 for `name`, with the nearest known name when one is near. */
async function notFound(ctx: ServiceContext, name: string): Promise<WmsError> {
  const names = (await listAppTemplates(ctx.handle)).map((r) => r.name);
  const near = closestName(name, names);
  return new WmsError('WMS_NOT_FOUND', `no application ${name}${near === undefined ? '' : ` (did you mean ${near}?)`}`);
}

/** The row of `name`; 404 when there is none. */
async function rowOf(ctx: ServiceContext, name: string): Promise<AppTemplateRow> {
  const row = await getAppTemplate(ctx.handle, name);
  if (!row) throw await notFound(ctx, name);
  return row;
}

/** The template `name`; 404 when there is none. */
export async function getApplication(ctx: ServiceContext, input: { name: string }): Promise<AppTemplate> {
  return (await rowOf(ctx, input.name)).template as AppTemplate;
}

/** The template `name` as applied (its YAML text), with who stored it and when; 404 when there is none. */
export async function getApplicationYaml(ctx: ServiceContext, input: { name: string }): Promise<ApplicationYaml> {
  const { name, yaml, source, updatedBy, updatedAt } = await rowOf(ctx, input.name);
  return { name, yaml, source, updatedBy, updatedAt: updatedAt.toISOString() };
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
  const t = await getApplication(ctx, input);
  const jdl = renderJdl(t, input.values); // 400 WMS_VALIDATION with a problem per parameter
  const jobIds = await submit(jdl);
  log?.info({ application: t.name, jobs: jobIds.length }, 'application submitted');
  return { jobIds, jdl };
}

/** `parameters[1].max: must ...` as `{ path: 'parameters[1].max', message: 'must ...' }`. */
function pathProblem(problem: string): { path: string; message: string } {
  const at = problem.indexOf(': ');
  return at > 0 ? { path: problem.slice(0, at), message: problem.slice(at + 2) } : { path: '(top)', message: problem };
}

/** Validates `template` (400 listing every problem with its path), which must be named `name`. */
function checkTemplate(name: string, template: unknown): AppTemplate {
  const problems = templateProblems(template);
  const t = template as AppTemplate;
  if (problems.length === 0 && t.name !== name) problems.push(`name: "${t.name}" differs from the URL's ${name}`);
  if (problems.length > 0) {
    throw new WmsError('WMS_VALIDATION', `invalid application template: ${problems.join('; ')}`, {
      details: { problems: problems.map(pathProblem) },
    });
  }
  return t;
}

/** A template body as the API got it: YAML text (kept as it is), or a parsed JSON value. */
function templateOfBody(body: unknown): { value: unknown; yaml: string | null } {
  if (typeof body !== 'string') return { value: body, yaml: null };
  const parsed = parseYaml(body);
  if ('problem' in parsed) {
    const { line, column, message } = parsed.problem;
    throw new WmsError('WMS_VALIDATION', `not valid YAML at line ${line}, column ${column}: ${message}`, {
      details: { problems: [{ message, line, column, path: 'body' }] },
    });
  }
  return { value: parsed.value, yaml: body };
}

/**
 * Stores a template (created or replaced) given as YAML text or a JSON value: validated first
 * (400s above), then one upsert. Answers the template.
 */
export async function putApplication(
  ctx: ServiceContext,
  input: { name: string; body: unknown; by: string },
  log?: Pick<Logger, 'info'>,
): Promise<AppTemplate> {
  const { value, yaml } = templateOfBody(input.body);
  const t = checkTemplate(input.name, value);
  await upsertAppTemplate(ctx.handle, { name: t.name, yaml: yaml ?? stringify(t), template: t, source: 'admin', updatedBy: input.by });
  log?.info({ application: t.name, by: input.by }, 'application template stored');
  return t;
}

/** Removes the template `name`; 404 (with the nearest name) when there is none. */
export async function deleteApplication(
  ctx: ServiceContext,
  input: { name: string; by: string },
  log?: Pick<Logger, 'info'>,
): Promise<{ name: string }> {
  if (!(await deleteAppTemplate(ctx.handle, input.name))) throw await notFound(ctx, input.name);
  log?.info({ application: input.name, by: input.by }, 'application template removed');
  return { name: input.name };
}
