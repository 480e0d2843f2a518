/**
 * `wms pilot …`: list pilots, show one with the environment it reported, print (and follow) its
 * remote log. For site admins and admins (the API refuses other roles).
 *
 * `pilot logs --follow` is a long-running command: it answers a `LongRunning` handle whose
 * `drain()` (main's Ctrl-C) stops the polling between two requests, and whose `done` resolves
 * once the pilot is final and its log has stayed quiet for two polls.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PILOT_FINAL_STATES, PILOT_STATES, type PilotState } from '../../core/pilot-states.js';
import type { Pilot, PilotDetail, PilotList, PilotLog, PilotLogLine } from '../../api/index.js';
import type { ApiClient } from '../client.js';
import { clientFrom, flag, int, str, strs, type CommandSpec, type LongRunning, type OptionValues } from '../command.js';
import { CliError, exitCodeOf, formatError, UsageError } from '../errors.js';
import { json, shortTime, table } from '../output.js';
import { answerCommand, clientCommand } from './client-command.js';

/** Lines asked per page of a pilot's log (the API's default; its maximum is 10,000). */
const LOG_PAGE = 1000;
/** How often `logs --follow` asks for new lines. */
const FOLLOW_INTERVAL_MS = 1000;
/** Polls without a new line, once the pilot is final, before `logs --follow` ends. */
const QUIET_POLLS = 2;
/** How long `logs --follow` rides out an unreachable server before it gives up. */
const OUTAGE_LIMIT_MS = 60_000;
/** REASON is cut to this width in the list (the whole reason is in `pilot show` and --json). */
const REASON_WIDTH = 40;

function pilotPath(ref: string): string {
  return `/api/pilots/${encodeURIComponent(ref)}`;
}

function cut(text: string, width: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= width ? one : `${one.slice(0, width - 3)}...`;
}

/** `--status A,B --status C` → validated pilot states (case-insensitive). */
function pilotStates(values: OptionValues): PilotState[] {
  const out: PilotState[] = [];
  for (const s of strs(values, 'status')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)) {
    const state = PILOT_STATES.find((k) => k.toLowerCase() === s.toLowerCase());
    if (!state) throw new UsageError(`--status: "${s}" is not a pilot status (${PILOT_STATES.join(', ')})`);
    if (!out.includes(state)) out.push(state);
  }
  return out;
}

function pilotTable(pilots: readonly Pilot[]): string {
  return table(
    ['ID', 'STATUS', 'SITE', 'CE', 'QUEUE', 'DB12', 'JOBS', 'REASON', 'UPDATED'],
    pilots.map((p) => [
      p.id,
      p.status,
      p.site,
      p.ce,
      p.queue,
      p.benchmark,
      p.jobsRun,
      cut(p.statusReason, REASON_WIDTH) || '-',
      shortTime(p.lastUpdateAt),
    ]),
  );
}

const list = clientCommand({
  name: ['pilot', 'list'],
  usage: '[--site S] [--ce C] [--status A,B] [--before ID] [--limit N]',
  summary: 'list pilots, newest first',
  details:
    'DB12 is the benchmark the pilot measured on its node (- before it registered); JOBS the jobs\n' +
    'it started; REASON why it is in its status (cut; "wms pilot show ID" has all of it). When a\n' +
    'page is full, the last line gives the --before that shows the next one.',
  options: {
    site: { type: 'string', value: 'S', description: 'only at site S' },
    ce: { type: 'string', value: 'C', description: 'only through computing element C' },
    status: { type: 'string', multiple: true, value: 'S', description: `only in status S (repeat, or S1,S2): ${PILOT_STATES.join(' ')}` },
    before: { type: 'string', value: 'ID', description: 'only pilots with an id below ID (the next page)' },
    limit: { type: 'string', value: 'N', description: 'at most N pilots (default 100, at most 1000)' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const q = new URLSearchParams();
    for (const k of ['site', 'ce'] as const) {
      const v = str(values, k);
      if (v !== undefined) q.set(k, v);
    }
    const states = pilotStates(values);
    if (states.length > 0) q.set('status', states.join(','));
    const before = int(values, 'before', 1);
    const limit = int(values, 'limit', 1);
    if (limit !== undefined && limit > 1000) throw new UsageError(`--limit: at most 1000 pilots at once (page with --before)`);
    if (before !== undefined) q.set('before', String(before));
    if (limit !== undefined) q.set('limit', String(limit));
    const qs = q.toString();
    const answer = await clientFrom(io).json<PilotList>('GET', `/api/pilots${qs ? `?${qs}` : ''}`);
    if (flag(values, 'json')) {
      io.out(json(answer));
      return 0;
    }
    const n = answer.pilots.length;
    if (n === 0) {
      io.out('no pilots');
      return 0;
    }
    io.out(pilotTable(answer.pilots));
    const last = answer.pilots[n - 1]!;
    io.out(`${n} pilot${n === 1 ? '' : 's'}${n === (limit ?? 100) ? `; next page: --before ${last.id}` : ''}`);
    return 0;
  },
});

function sizeMb(mb: unknown): string {
  if (typeof mb !== 'number' || !Number.isFinite(mb)) return '-';
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}

function text(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

/** `+0.25 s (this node is behind)`; positive offsets mean the server's clock is ahead. */
function clockOffset(s: number | null): string {
  if (s === null) return '-';
  const v = `${s >= 0 ? '+' : '-'}${Math.abs(s).toFixed(2)} s`;
  if (Math.abs(s) < 0.005) return v;
  return `${v} (the node's clock is ${s > 0 ? 'behind' : 'ahead of'} the server's)`;
}

function db12Line(benchmark: number | null, details: unknown): string {
  if (benchmark === null) return '-';
  if (!details || typeof details !== 'object') return String(benchmark);
  const d = details as { raw?: unknown; copies?: unknown; method?: unknown };
  const extra: string[] = [];
  if (Array.isArray(d.raw) && d.raw.every((x) => typeof x === 'number'))
    extra.push(`raw ${(d.raw as number[]).map((x) => x.toFixed(1)).join(', ')}`);
  if (typeof d.copies === 'number') extra.push(`${d.copies} cop${d.copies === 1 ? 'y' : 'ies'}`);
  if (typeof d.method === 'string') extra.push(d.method);
  return extra.length > 0 ? `${benchmark} (${extra.join('; ')})` : String(benchmark);
}

/** Keys of the environment shown on their own lines (the rest go under "other"). */
const SHOWN_ENV = new Set([
  'hostname',
  'os',
  'kernel',
  'cpuModel',
  'cores',
  'memoryMb',
  'workDir',
  'fsType',
  'diskFreeMb',
  'gpus',
  'nodeVersion',
  'batchSystem',
  'batchJobId',
  'db12',
]);

function aligned(rows: readonly (readonly [string, string])[], indent = ''): string[] {
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}  ${v}`);
}

/** The readable text of `wms pilot show`. Pure. */
export function formatPilot(p: PilotDetail): string {
  const env = p.environment ?? {};
  const head = aligned([
    ['status', p.statusReason ? `${p.status} (${p.statusReason})` : p.status],
    ['stamp', p.stamp],
    ['CE reference', text(p.reference)],
    ['site', p.site],
    ['CE', `${p.ce} (${p.ceType}), queue ${p.queue}`],
    ['VO', p.vo],
    ['jobs', `${p.jobsRun} started${p.currentJobId !== null ? `, current job ${p.currentJobId}` : ''}`],
    ['exit code', text(p.exitCode)],
    ['created', shortTime(p.createdAt)],
    ['updated', shortTime(p.lastUpdateAt)],
  ]);
  const lines = [`pilot ${p.id}`, ...head.map((l) => `  ${l}`), '', 'environment:'];
  if (Object.keys(env).length === 0) {
    lines.push('  not reported yet (the pilot has not registered)');
    return lines.join('\n');
  }
  const os = [env['os'], env['kernel'] ? `kernel ${text(env['kernel'])}` : null].filter((x) => x !== null && x !== undefined && x !== '');
  const gpus = Array.isArray(env['gpus']) ? (env['gpus'].length === 0 ? 'none' : env['gpus'].map(text).join(', ')) : text(env['gpus']);
  const workDir = typeof env['workDir'] === 'string' ? env['workDir'] : p.workDir;
  const fsType = typeof env['fsType'] === 'string' ? env['fsType'] : p.fsType;
  const rows: [string, string][] = [
    ['host', text(env['hostname'])],
    ['OS', os.length > 0 ? os.map(text).join(', ') : '-'],
    ['CPU', text(env['cpuModel'])],
    ['cores', text(env['cores'])],
    ['memory', sizeMb(env['memoryMb'])],
    ['GPUs', gpus],
    ['work dir', workDir ? `${workDir}${fsType ? ` (${fsType})` : ''}` : '-'],
    ['disk free', sizeMb(env['diskFreeMb'])],
    ['clock offset', clockOffset(p.clockOffsetSeconds)],
    ['DB12', db12Line(p.benchmark, env['db12'])],
    ['node', text(env['nodeVersion'])],
    ['batch system', `${text(env['batchSystem'])}${env['batchJobId'] ? `, job ${text(env['batchJobId'])}` : ''}`],
  ];
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!SHOWN_ENV.has(k)) rows.push([k, text(v)]);
  }
  lines.push(...aligned(rows, '  '));
  return lines.join('\n');
}

const show = answerCommand<PilotDetail>({
  name: ['pilot', 'show'],
  usage: 'REF',
  summary: 'one pilot and the environment it reported (OS, CPU, memory, work dir, disk, clock, DB12)',
  details: 'REF is the pilot id, its stamp or the reference its computing element gave it.',
  positionals: [1, 1],
  path: ([ref]) => pilotPath(ref!),
  text: formatPilot,
});

/** Every line after `after`, page by page: answers the pilot's status, id and the lines. */
async function readLogPages(client: ApiClient, ref: string, after: number): Promise<PilotLog> {
  let page = await client.json<PilotLog>('GET', `${pilotPath(ref)}/logs?after=${after}&limit=${LOG_PAGE}`);
  const lines: PilotLogLine[] = [...page.lines];
  while (page.lines.length === LOG_PAGE) {
    const last = page.lines[page.lines.length - 1]!.id;
    page = await client.json<PilotLog>('GET', `${pilotPath(String(page.pilotId))}/logs?after=${last}&limit=${LOG_PAGE}`);
    lines.push(...page.lines);
  }
  return { pilotId: page.pilotId, status: page.status, lines };
}

function transient(e: unknown): boolean {
  return e instanceof CliError && (e.code === 'UNREACHABLE' || e.code === 'WMS_DB_UNAVAILABLE');
}

export interface FollowLogOptions {
  signal: AbortSignal;
  intervalMs?: number;
  /** Receives each new line, in order. */
  onLine(line: PilotLogLine): void;
  /** Told once per outage that the server does not answer (polling goes on). */
  onOutage?(message: string): void;
}

/**
 * Polls a pilot's log until the pilot is final (Done, Failed, Aborted, Deleted) and no new line
 * came for two polls, or until `signal` aborts. Rides out an unreachable server for a minute.
 */
export async function followPilotLog(client: ApiClient, ref: string, o: FollowLogOptions): Promise<void> {
  const interval = o.intervalMs ?? FOLLOW_INTERVAL_MS;
  let after = 0;
  let id = ref;
  let quiet = 0;
  let outageSince: number | null = null;
  while (!o.signal.aborted) {
    let answer: PilotLog;
    try {
      answer = await readLogPages(client, id, after);
      outageSince = null;
    } catch (e) {
      // The first request must succeed (a wrong ref is an error at once); later, an outage is waited out.
      if (after === 0 && id === ref) throw e;
      if (!transient(e)) throw e;
      if (outageSince === null) {
        outageSince = Date.now();
        o.onOutage?.((e as Error).message);
      } else if (Date.now() - outageSince > OUTAGE_LIMIT_MS) {
        throw e;
      }
      await sleep(interval, undefined, { signal: o.signal }).catch(() => undefined);
      continue;
    }
    id = String(answer.pilotId);
    for (const l of answer.lines) o.onLine(l);
    if (answer.lines.length > 0) after = answer.lines[answer.lines.length - 1]!.id;
    if (PILOT_FINAL_STATES.includes(answer.status)) {
      quiet = answer.lines.length === 0 ? quiet + 1 : 0;
      if (quiet >= QUIET_POLLS) return;
    }
    await sleep(interval, undefined, { signal: o.signal }).catch(() => undefined);
  }
}

const logs = clientCommand({
  name: ['pilot', 'logs'],
  usage: 'REF [--follow]',
  summary: "a pilot's remote log, in order (--follow: until the pilot ends)",
  details:
    'REF is the pilot id, its stamp or the reference its computing element gave it. Each line is\n' +
    'printed as the pilot wrote it (its time first). --follow asks for new lines every second\n' +
    'until the pilot is final (Done, Failed, Aborted, Deleted) and two polls in a row brought\n' +
    'nothing; Ctrl-C stops it. --json prints {pilotId, status, lines: [{id, at, line}]}; with\n' +
    '--follow, one JSON object {id, at, line} per line as they come (JSON Lines).',
  options: {
    follow: { type: 'boolean', short: 'f', description: 'keep printing new lines until the pilot ends' },
  },
  positionals: [1, 1],
  async run(values, positionals, io): Promise<number | LongRunning> {
    const ref = positionals[0]!;
    const client = clientFrom(io);
    const asJson = flag(values, 'json');
    if (!flag(values, 'follow')) {
      const answer = await readLogPages(client, ref, 0);
      if (asJson) io.out(json(answer));
      else if (answer.lines.length === 0) io.err(`pilot ${answer.pilotId} (${answer.status}) has sent no log lines yet`);
      else for (const l of answer.lines) io.out(l.line);
      return 0;
    }
    const controller = new AbortController();
    const done = followPilotLog(client, ref, {
      signal: controller.signal,
      onLine: (l) => io.out(asJson ? JSON.stringify(l) : l.line),
      onOutage: (m) => io.err(`wms: ${m}; still trying`),
    }).then(
      () => 0,
      (e: unknown) => {
        for (const line of formatError(e)) io.err(line);
        return exitCodeOf(e);
      },
    );
    return {
      done,
      stopMessage: null,
      async drain() {
        controller.abort();
        await done;
      },
    };
  },
});

export const pilotCommands: CommandSpec[] = [list, show, logs];
