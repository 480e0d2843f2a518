/**
 * `wms app list | show NAME | apply FILE | remove NAME`: the application templates of the
 * dashboard's Submit page (core/app-template.ts), kept by the services in their database, so
 * every replica serves a template as soon as it is applied. `apply` checks the file here first
 * (every problem named with the file, its line and column and its path in the document), then
 * sends the YAML text as it is (comments kept), which `show` prints back. Storing and removing
 * are for admins; anyone signed in may list and show.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { ApplicationList, ApplicationRemoved, ApplicationTemplate, ApplicationYaml } from '../../api/index.js';
import { APP_NAME_PATTERN, templateProblems } from '../../core/app-template.js';
import { clientFrom, readTextFile, type CommandSpec, type Io } from '../command.js';
import { CliError, UsageError, type ApiProblem } from '../errors.js';
import { table } from '../output.js';
import { answerCommand, clientCommand, printAnswer } from './client-command.js';

/** A template name from the command line, or a usage error. */
function appName(command: string, name: string): string {
  if (!APP_NAME_PATTERN.test(name)) throw new UsageError(`app ${command}: "${name}" is not an application name (a-z, 0-9, _ and -)`);
  return name;
}

const list = answerCommand<ApplicationList>({
  name: ['app', 'list'],
  usage: '',
  summary: 'the application templates (the forms of the Submit page)',
  details: 'Each template with its title and parameters. "wms app show NAME" prints one as it was applied.',
  positionals: [0, 0],
  path: () => '/api/applications',
  text: (answer) =>
    answer.applications.length === 0
      ? 'no applications'
      : table(
          ['NAME', 'TITLE', 'PARAMETERS'],
          answer.applications.map((a) => [a.name, a.title, a.parameters.map((p) => p.name).join(', ') || '-']),
        ),
});

const show = answerCommand<ApplicationYaml>({
  name: ['app', 'show'],
  usage: 'NAME',
  summary: 'print an application template as it was applied (YAML)',
  details:
    'The YAML text as applied, comments kept (a template stored as JSON: the YAML it makes), ready to\n' +
    'edit and apply again. With --json: the text, whether it was shipped (package) or applied by an\n' +
    'admin, by whom and when. An unknown name is refused with the nearest known one.',
  positionals: [1, 1],
  path: ([name]) => `/api/applications/${appName('show', name!)}/yaml`,
  text: (answer) => answer.yaml.replace(/\n$/, ''),
});

/** `sites[0].name`-style path → the keys of a YAML document. */
function pathKeys(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

/** Problems located in the file: the line and column of the deepest node of each path that exists. */
function locate(doc: Document, lines: LineCounter, problems: readonly ApiProblem[]): ApiProblem[] {
  return problems.map((p) => {
    if (p.line !== undefined || p.path === undefined) return p;
    let keys = p.path === '(top)' ? [] : pathKeys(p.path);
    let node: unknown = null;
    while (keys.length > 0 && !(node = doc.getIn(keys, true))) keys = keys.slice(0, -1);
    const offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
    if (offset === undefined) return p;
    const { line, col } = lines.linePos(offset);
    return { message: `${p.path}: ${p.message}`, line, column: col };
  });
}

/** A template file read and checked here: its name, or a CliError with every problem located. */
async function checkTemplateFile(io: Io, file: string): Promise<{ name: string; doc: Document; lines: LineCounter }> {
  const text = await readTextFile(io, file, 'application template');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return { message: e.message.split('\n')[0]!, line, column: col };
    });
    throw new CliError(`${file} is not valid YAML; nothing applied`, problems, [file]);
  }
  const problems = templateProblems(doc.toJS()).map((p) => {
    const at = p.indexOf(': ');
    return { path: p.slice(0, at), message: p.slice(at + 2) };
  });
  if (problems.length > 0) {
    throw new CliError(`${file}: ${problems.length} problem(s); nothing applied`, locate(doc, lines, problems), [file]);
  }
  return { name: (doc.toJS() as ApplicationTemplate).name, doc, lines };
}

const apply = clientCommand({
  name: ['app', 'apply'],
  usage: 'FILE.yaml',
  summary: 'create or replace an application template from a YAML file (admins)',
  details:
    'The file is one template (see apps/README.md): name, title, parameters, resources and a JDL with\n' +
    '{{parameter}} placeholders. It is checked here first, then sent as it is (comments kept) and\n' +
    'checked again by the services; nothing is stored when there is a problem. A template of the\n' +
    'same name is replaced, a shipped one too (a later start of the services keeps your version).\n' +
    'Every service replica lists it at once.',
  positionals: [1, 1],
  async run(values, [file], io) {
    const { name, doc, lines } = await checkTemplateFile(io, file!);
    const path = resolve(io.cwd, file!);
    const { size } = await stat(path);
    let stored: ApplicationTemplate;
    try {
      stored = await clientFrom(io).sendFile<ApplicationTemplate>('PUT', `/api/applications/${name}`, {
        path,
        size,
        contentType: 'application/yaml',
      });
    } catch (e) {
      // The services' problems, located in the file as ours are.
      if (e instanceof CliError && e.problems.length > 0) {
        throw new CliError(e.message, locate(doc, lines, e.problems), [file!], e.code, e.status);
      }
      throw e;
    }
    printAnswer(io, values, stored, (t) => `application ${t.name} applied from ${basename(file!)}`);
    return 0;
  },
});

const remove = clientCommand({
  name: ['app', 'remove'],
  usage: 'NAME',
  summary: 'remove an application template (admins)',
  details:
    'The form is gone from the Submit page of every replica at once; jobs already submitted from it\n' +
    'are not touched. A shipped template (hello, sweep) comes back when the services next start.',
  positionals: [1, 1],
  async run(values, [name], io) {
    const removed = await clientFrom(io).json<ApplicationRemoved>('DELETE', `/api/applications/${appName('remove', name!)}`);
    printAnswer(io, values, removed, (r) => `application ${r.name} removed`);
    return 0;
  },
});

export const appCommands: CommandSpec[] = [list, show, apply, remove];
