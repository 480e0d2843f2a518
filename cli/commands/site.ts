/**
 * `wms site …` and `wms ce …` for site admins: apply a registry file (YAML, checked here first
 * so that every problem is named with the file, its line and column and its path in the
 * document), list the registry, ban and allow sites and computing elements, and one site's
 * status: per queue, pilots by state, the last reasons pilots failed, and whether it is paused.
 * A site admin changes only the sites its token names (`wms token issue --role site-admin
 * --site NAME`); the services refuse the others with the reason.
 */
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Queue, QueueList, RegistryApplied, SiteStatus } from '../../api/index.js';
import { siteRegistryProblems } from '../../core/site-config.js';
import { clientFrom, readTextFile, str, type CommandSpec, type Io } from '../command.js';
import { CliError, UsageError, type ApiProblem } from '../errors.js';
import { shortTime, table } from '../output.js';
import { answerCommand, clientCommand, printAnswer } from './client-command.js';

/** `sites[0].computingElements[1].name` -> ['sites', 0, 'computingElements', 1, 'name']. */
function pathKeys(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

/** Reads and checks a registry file; every problem located as `file:line:column: path: message`. */
export async function readRegistryFile(io: Io, file: string): Promise<unknown> {
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
  return value;
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
    'director sees the changes on its next cycle: no restart.',
  positionals: [1, 1],
  async run(values, positionals, io) {
    const file = positionals[0]!;
    const doc = await readRegistryFile(io, file);
    const r = await clientFrom(io).json<RegistryApplied>('PUT', '/api/sites', doc);
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
