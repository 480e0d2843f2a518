/**
 * `wms site …` and `wms ce …` for site admins: apply a registry file (YAML, checked here first
 * so that every problem is named with the file, its line and column and its path in the
 * document), list the registry, ban and allow sites and computing elements, and one site's
 * status: per queue, pilots by state, the last reasons pilots failed, and whether it is paused.
 * A site admin changes only the sites its token names (`wms token issue --role site-admin
 * --site NAME`); the services refuse the others with the reason.
 */
import { resolve } from 'node:path';
import { LineCounter, parse, parseDocument } from 'yaml';
import type { Queue, QueueList, RegistryApplied, SiteStatus } from '../../api/index.js';
import { siteRegistryProblems, type SiteRegistry } from '../../core/site-config.js';
import { clientFrom, flag, readTextFile, str, strs, type CommandSpec, type Io } from '../command.js';
import { CliError, UsageError, type ApiProblem } from '../errors.js';
import { shortTime, table } from '../output.js';
import { answerCommand, clientCommand, printAnswer } from './client-command.js';

/** `sites[0].computingElements[1].name` -> ['sites', 0, 'computingElements', 1, 'name']. */
function pathKeys(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

/**
 * `PATH=VALUE` overrides (`--set`) applied to a parsed document: VALUE is YAML (`2222`,
 * `{ file: /tmp/key }`), `null` removes the key. For trying a shipped file against another
 * endpoint (a test bed, a simulator) without editing it.
 */
function applyOverrides(doc: ReturnType<typeof parseDocument>, overrides: readonly string[]): void {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${o}: expected PATH=VALUE, e.g. sites[0].computingElements[0].settings.host=localhost`);
    const keys = pathKeys(o.slice(0, eq));
    const value: unknown = parse(o.slice(eq + 1));
    if (value === null) doc.deleteIn(keys);
    else doc.setIn(keys, doc.createNode(value));
  }
}

/**
 * Reads and checks a registry file (after the `--set` overrides); every problem located as
 * `file:line:column: path: message`.
 */
export async function readRegistryFile(io: Io, file: string, overrides: readonly string[] = []): Promise<SiteRegistry> {
  const text = await readTextFile(io, file, 'site config');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const located = (offset: number | undefined, message: string): ApiProblem => {
    if (offset === undefined) return { message };
    const p = lines.linePos(offset);
    return { message, line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new CliError(
      `${file} is not valid YAML`,
      doc.errors.map((e) => located(e.pos[0], e.message.split('\n')[0]!)),
      [file],
    );
  }
  applyOverrides(doc, overrides);
  const value: unknown = doc.toJS();
  const problems = siteRegistryProblems(value);
  if (problems.length > 0) {
    const where = problems.map((p) => {
      // The deepest node of the problem's path that exists in the document.
      let keys = pathKeys(p.split(':')[0]!);
      let node: unknown = null;
      while (keys.length > 0 && !(node = doc.getIn(keys, true))) keys = keys.slice(0, -1);
      return located((node as { range?: [number, number, number] } | null)?.range?.[0], p);
    });
    throw new CliError(`${file}: ${problems.length} problem(s); nothing applied`, where, [file]);
  }
  return value as SiteRegistry;
}

const apply = clientCommand({
  name: ['site', 'apply'],
  usage: 'FILE.yaml',
  summary: 'create or update the sites, computing elements and queues of a registry file',
  details:
    'The file (see site-configs/) lists sites, their computing elements (local, slurm, htcondor,\n' +
    'opennebula) and queues with limits and what a pilot there offers. It is checked whole before\n' +
    'anything is sent, then applied in one transaction; nothing is removed. Secrets (passwords,\n' +
    'keys, tokens) are written as { env: NAME } or { file: PATH }, never as values. A queue\n' +
    '`environment` may not set variables that hook into loaders and shells (LD_*, NODE_OPTIONS,\n' +
    'BASH_ENV, PYTHONPATH, ...). A site admin may only name the sites its token administers\n' +
    '(never the local site, which is for admins): otherwise nothing is applied. The site\n' +
    'director sees the changes on its next cycle: no restart.\n' +
    'Then (and alone with --check, which applies nothing and exits 1 on a problem) what only this\n' +
    'machine can know: secrets present, sbatch/squeue or condor_submit/condor_q installed, the\n' +
    'endpoint answering (SSH login, OpenNebula one.system.version); when applying, as warnings.',
  options: {
    check: { type: 'boolean', description: 'check the file and this machine only; apply nothing (exit 1 on a problem)' },
    set: {
      type: 'string',
      multiple: true,
      value: 'PATH=VALUE',
      description: 'override a value of the file first (VALUE in YAML, null removes it); repeat',
    },
  },
  positionals: [1, 1],
  async run(values, positionals, io) {
    const file = positionals[0]!;
    const doc = await readRegistryFile(io, file, strs(values, 'set'));
    if (flag(values, 'check')) return checkOnly(io, file, doc);
    // The machine checks run while the services apply: they warn, they do not stop the apply.
    const warnings = machineProblems(doc, io.env);
    const r = await clientFrom(io).json<RegistryApplied>('PUT', '/api/sites', doc);
    for (const w of await warnings) io.err(`warning: ${w}`);
    printAnswer(
      io,
      values,
      r,
      () =>
        `${resolve(io.cwd, file)}: ${r.sites} site(s), ${r.computingElements} computing element(s), ` +
        `${r.queues.created} queue(s) created, ${r.queues.updated} updated`,
    );
    return 0;
  },
});

/** The machine checks (cli/server-ce-checks.ts), loaded on demand: they bring the drivers' code. */
async function machineProblems(doc: SiteRegistry, env: Io['env']): Promise<string[]> {
  const { registryMachineProblems } = await import('../server-ce-checks.js');
  return registryMachineProblems(doc, env);
}

/** `wms site apply --check`: the machine problems of a valid file, one line each; 1 when there is one. */
async function checkOnly(io: Io, file: string, doc: SiteRegistry): Promise<number> {
  const problems = await machineProblems(doc, io.env);
  const ces = doc.sites.reduce((n, s) => n + s.computingElements.length, 0);
  for (const p of problems) io.err(p);
  if (problems.length > 0) {
    io.err(`${file}: ${problems.length} problem(s) on this machine; nothing applied`);
    return 1;
  }
  io.out(`${file}: valid; ${ces} computing element(s) checked on this machine: no problem (nothing applied)`);
  return 0;
}

function stateOf(q: Queue): string {
  if (q.siteBanned) return `site banned: ${q.siteBanReason ?? ''}`.trim();
  if (q.ceBanned) return `CE banned: ${q.ceBanReason ?? ''}`.trim();
  if (q.pausedUntil) return `paused until ${shortTime(q.pausedUntil)}`;
  return 'ok';
}

function queueTable({ queues }: QueueList): string {
  if (queues.length === 0) return 'no sites registered (wms site apply site-configs/FILE.yaml)';
  return table(
    ['SITE', 'CE', 'TYPE', 'QUEUE', 'CPUS', 'RAM MB', 'PILOTS WAIT/TOTAL/CYCLE', 'VOS', 'STATE'],
    queues.map((q) => [
      q.site,
      q.ce,
      q.ceType,
      q.queue,
      q.processors,
      q.ramMb,
      `${q.maxWaitingPilots}/${q.maxTotalPilots}/${q.maxPilotsPerCycle}`,
      q.allowedVos.join(',') || 'any',
      stateOf(q),
    ]),
  );
}

const list = answerCommand<QueueList>({
  name: ['site', 'list'],
  usage: '',
  summary: 'the registered sites, computing elements and queues, with bans and pauses',
  positionals: [0, 0],
  path: () => '/api/sites',
  text: queueTable,
});

/** `wms site status`: per queue its state, pilots by state and last failures. */
function siteStatusText(s: SiteStatus): string {
  const lines = [`site ${s.site}: ${s.queues.length} queue(s)`];
  for (const q of s.queues) {
    const pilots =
      Object.entries(q.pilots)
        .map(([st, n]) => `${n} ${st}`)
        .join(', ') || 'none';
    lines.push('', `${q.ce}/${q.queue} (${q.ceType}): ${stateOf(q)}`);
    if (q.pausedUntil) lines.push(`  paused: ${q.pauseReason ?? ''}`);
    lines.push(`  pilots: ${pilots}`);
    if (q.lastFailures.length > 0) {
      lines.push('  last failures:');
      for (const f of q.lastFailures) lines.push(`    ${shortTime(f.at)}  pilot ${f.pilotId}  ${f.status}: ${f.reason}`);
    }
  }
  return lines.join('\n');
}

const status = answerCommand<SiteStatus>({
  name: ['site', 'status'],
  usage: 'NAME',
  summary: "a site's queues: pilots by state, the last reasons pilots failed, paused or not",
  positionals: [1, 1],
  path: ([name]) => `/api/sites/${encodeURIComponent(name!)}/status`,
  text: siteStatusText,
});

function banCommands(kind: 'site' | 'ce'): CommandSpec[] {
  const path = kind === 'site' ? '/api/sites' : '/api/computing-elements';
  const what = kind === 'site' ? 'site' : 'computing element';
  return [
    clientCommand({
      name: [kind, 'ban'],
      usage: 'NAME --reason TEXT',
      summary: `ban a ${what}: no pilots are sent there and the matcher gives it no work`,
      options: { reason: { type: 'string', value: 'TEXT', description: 'why (shown to users and site admins); required' } },
      json: false,
      positionals: [1, 1],
      async run(values, positionals, io) {
        const reason = str(values, 'reason');
        if (!reason) throw new UsageError('--reason is required: say why, for the users and the other admins');
        // Setting a ban is idempotent: retried through outages.
        await clientFrom(io).json('POST', `${path}/${encodeURIComponent(positionals[0]!)}/ban`, { reason }, { idempotent: true });
        io.out(`${what} ${positionals[0]} banned: ${reason}`);
        return 0;
      },
    }),
    clientCommand({
      name: [kind, 'allow'],
      usage: 'NAME',
      summary: `allow a banned ${what} again`,
      json: false,
      positionals: [1, 1],
      async run(_values, positionals, io) {
        await clientFrom(io).json('POST', `${path}/${encodeURIComponent(positionals[0]!)}/allow`, undefined, { idempotent: true });
        io.out(`${what} ${positionals[0]} allowed`);
        return 0;
      },
    }),
  ];
}

export const siteCommands: CommandSpec[] = [apply, list, status, ...banCommands('site')];
export const ceCommands: CommandSpec[] = banCommands('ce');
