/**
 * `wms job …`: submit (and --wait for the jobs to end), status, logging, kill, reschedule,
 * delete, list, parameters, explain, output.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { list as tarList } from 'tar';
import { parseDuration } from '../../core/config-units.js';
import { JOB_STATES, isFinal, isJobState, type JobState } from '../../core/job-states.js';
import type {
  BulkActionRequest,
  BulkResult,
  ExplainJob,
  JobCounts,
  JobDetail,
  JobHeartbeats,
  JobHistory,
  JobList,
  JobOutput,
  JobParameters,
  JobStatusList,
  JobSummary,
  SubmitJobsAnswer,
  SubmitJobsRequest,
} from '../../api/index.js';
import type { ApiClient } from '../client.js';
import { resolveClientConfig } from '../client-config.js';
import { openJobStream, type JobStream, type JobStreamEvent } from '../event-stream.js';
import {
  clientFrom,
  flag,
  int,
  jobIds,
  str,
  strs,
  type CommandSpec,
  type Io,
  type OptionValues,
  readTextFile,
  readTextOrNull,
} from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { planInputSandbox, rewriteInputSandbox } from '../../core/jdl/input-sandbox.js';
import { humanDuration, idRanges, json, shortTime, table } from '../output.js';
import { packInputSandbox } from '../sandbox-pack.js';
import { unpackSandbox } from '../sandbox-unpack.js';
import { answerCommand, clientCommand } from './client-command.js';
import { formatExplainJob } from './explain-format.js';

/**
 * Reads one JDL file and, when its InputSandbox names local files, packs and uploads them and
 * answers the JDL with those entries replaced by `SB:<sha256>`.
 */
export async function prepareJdl(client: ApiClient, file: string, io: Io): Promise<string> {
  const path = resolve(io.cwd, file);
  const text = await readTextFile(io, file, 'JDL file');
  const plan = planInputSandbox(text);
  if (!plan) return text;
  const packed = await packInputSandbox(file, dirname(path), plan.local);
  try {
    await client.uploadSandbox(packed.sha256, packed.path, packed.size);
  } finally {
    await packed.cleanup();
  }
  return rewriteInputSandbox(text, plan, `SB:${packed.sha256}`);
}

function statusTable(jobs: JobSummary[]): string {
  return table(
    ['ID', 'STATUS', 'MINOR STATUS', 'APPLICATION', 'SITE', 'NAME', 'OWNER', 'UPDATED'],
    jobs.map((j) => [j.id, j.status, j.minorStatus, j.applicationStatus, j.site, j.jobName, j.owner, shortTime(j.lastUpdateAt)]),
  );
}

/** States in which `--wait` stops following a job (core's final states and Deleted). */
const FOLLOW_FINAL: readonly JobState[] = JOB_STATES.filter(isFinal);
/** Up to this many jobs, `--wait` prints one line per change; above, a line of counts. */
const FEW_JOBS = 10;
/** How often `--wait` asks for the jobs' status. */
const FOLLOW_INTERVAL_MS = 1000;
/**
 * Ids per status request: the query string stays far below the server's limits (20,000
 * characters of ids, 16 KiB of request head).
 */
const STATUS_CHUNK = 1000;

/** One job seen in a new status (`from` null: the first time it is seen). */
export interface JobChange {
  id: number;
  from: JobState | null;
  to: JobState;
  minorStatus: string;
}

export interface FollowJobsOptions {
  /** Time (ms since the epoch, on `now`) after which it gives up; null: never. */
  deadline: number | null;
  intervalMs?: number;
  now?: () => number;
  /** The changes seen by one poll, the latest summary of every job seen so far, the jobs gone. */
  onChange(changes: JobChange[], latest: ReadonlyMap<number, JobSummary>, gone: ReadonlySet<number>): void;
  /** Told once per outage that the server does not answer (polling goes on until the deadline). */
  onOutage?(message: string): void;
  /** Opens the event stream for these ids; null (or a rejection) means: poll instead. */
  openStream?(ids: readonly number[]): Promise<JobStream | null>;
}

export interface FollowJobsResult {
  /** The last summary of each job seen, in the order of the ids. */
  jobs: JobSummary[];
  /** Jobs the server no longer knows (deleted and purged). */
  notFound: number[];
  timedOut: boolean;
}

/** The status of many jobs: one request per STATUS_CHUNK ids. */
export function statusFetcher(client: ApiClient): (ids: readonly number[]) => Promise<JobStatusList> {
  return async (ids) => {
    const out: JobStatusList = { jobs: [], notFound: [] };
    for (let i = 0; i < ids.length; i += STATUS_CHUNK) {
      const a = await client.json<JobStatusList>('GET', `/api/jobs/status?ids=${ids.slice(i, i + STATUS_CHUNK).join(',')}`);
      out.jobs.push(...a.jobs);
      out.notFound.push(...a.notFound);
    }
    return out;
  };
}

/** A failure worth following through: the server away, its database away, or a gateway in front of it answering for it. */
function transient(e: unknown): boolean {
  if (!(e instanceof CliError)) return false;
  if (e.code === 'UNREACHABLE' || e.code === 'WMS_DB_UNAVAILABLE') return true;
  // A load balancer in front of the replicas, with none to answer this one request (a replica died under it).
  return e.code === undefined && (e.status === 502 || e.status === 503 || e.status === 504);
}

/** With a stream, events arriving this close together are printed as one batch. */
const STREAM_SETTLE_MS = 150;

/**
 * Follows jobs until each is final (or gone) or the deadline passes, and reports what changed.
 * With `o.openStream`, the changes come from the services' event stream (`GET /api/events`):
 * the current state first, then each change as it happens; when the stream cannot be opened, or
 * closes on the way, it polls `fetchStatus` with the ids not final yet. At the end it asks
 * `fetchStatus` once for the full summaries of the jobs (the stream carries the status only).
 */
export async function followJobs(
  ids: readonly number[],
  fetchStatus: (ids: readonly number[]) => Promise<JobStatusList>,
  o: FollowJobsOptions,
): Promise<FollowJobsResult> {
  const now = o.now ?? Date.now;
  const interval = o.intervalMs ?? FOLLOW_INTERVAL_MS;
  const latest = new Map<number, JobSummary>();
  const gone = new Set<number>();
  let outage = false;
  const open = () => ids.filter((id) => !gone.has(id) && !(latest.has(id) && isFinal(latest.get(id)!.status)));
  const result = (timedOut: boolean): FollowJobsResult => ({
    jobs: ids.filter((id) => latest.has(id)).map((id) => latest.get(id)!),
    notFound: ids.filter((id) => gone.has(id)),
    timedOut,
  });
  const apply = (jobs: readonly JobSummary[], notFound: readonly number[]) => {
    const changes: JobChange[] = [];
    for (const j of jobs) {
      const before = latest.get(j.id);
      latest.set(j.id, j);
      if (before?.status !== j.status) changes.push({ id: j.id, from: before?.status ?? null, to: j.status, minorStatus: j.minorStatus });
    }
    for (const id of notFound) gone.add(id);
    if (changes.length > 0 || notFound.length > 0) o.onChange(changes, latest, gone);
  };

  if (o.openStream) {
    const stream = await o.openStream(open()).catch(() => null);
    if (stream) {
      let timedOut: boolean | null;
      try {
        timedOut = await followStream(stream, apply, open, o.deadline, now);
      } finally {
        stream.close();
      }
      if (timedOut !== null) {
        // The stream carries the status only: the full summaries once, for the result.
        const seen = ids.filter((id) => latest.has(id));
        try {
          // The status as printed stays (the summaries may already be a step further).
          for (const j of seen.length > 0 ? (await fetchStatus(seen)).jobs : []) {
            const s = latest.get(j.id);
            latest.set(j.id, s ? { ...j, status: s.status, minorStatus: s.minorStatus } : j);
          }
        } catch (e) {
          if (!transient(e)) throw e;
        }
        return result(timedOut);
      }
      // Closed on the way (the server restarted, say): poll from here.
    }
  }

  for (;;) {
    const asked = open();
    if (asked.length === 0) return result(false);
    try {
      const answer = await fetchStatus(asked);
      outage = false;
      apply(answer.jobs, answer.notFound);
    } catch (e) {
      if (!transient(e)) throw e;
      if (!outage) o.onOutage?.((e as Error).message);
      outage = true;
    }
    if (open().length === 0) return result(false);
    const left = o.deadline === null ? interval : o.deadline - now();
    if (left <= 0) return result(true);
    await sleep(Math.min(interval, left));
  }
}

/** Applies the stream's events until every job is final (false), the deadline (true) or the stream closes (null). */
async function followStream(
  stream: JobStream,
  apply: (jobs: readonly JobSummary[], notFound: readonly number[]) => void,
  open: () => number[],
  deadline: number | null,
  now: () => number,
): Promise<boolean | null> {
  const known = new Map<number, JobSummary>();
  const summary = (e: JobStreamEvent): JobSummary => {
    const s: JobSummary = {
      ...(known.get(e.id) ?? placeholderSummary(e.id)),
      status: e.status,
      minorStatus: e.minorStatus,
      applicationStatus: e.applicationStatus,
      site: e.site,
      lastUpdateAt: e.at,
    };
    known.set(e.id, s);
    return s;
  };
  apply(stream.initial.map(summary), stream.notFound);
  for (;;) {
    if (open().length === 0) return false;
    const left = deadline === null ? 60_000 : deadline - now();
    if (left <= 0) return true;
    const batch = await stream.next(left, STREAM_SETTLE_MS);
    if (batch === null) return null;
    if (batch.length > 0) apply(batch.map(summary), []);
  }
}

/** A job known by its id only, until the final status request fills it in. */
function placeholderSummary(id: number): JobSummary {
  return {
    id,
    owner: '',
    ownerGroup: '',
    vo: '',
    jobName: '',
    jobGroup: '',
    jobType: '',
    site: '',
    status: 'Received',
    minorStatus: '',
    applicationStatus: '',
    priority: 0,
    cpuTime: 0,
    rescheduleCounter: 0,
    submittedAt: '',
    lastUpdateAt: '',
    startExecAt: null,
    endExecAt: null,
    heartbeatAt: null,
  };
}

/** `3 Waiting, 10 Running, 37 Done` in the order of the state table. */
function countsLine(jobs: Iterable<JobSummary>, extra: Record<string, number> = {}): string {
  const counts = new Map<string, number>();
  for (const j of jobs) counts.set(j.status, (counts.get(j.status) ?? 0) + 1);
  const parts = JOB_STATES.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`);
  for (const [k, n] of Object.entries(extra)) if (n > 0) parts.push(`${n} ${k}`);
  return parts.join(', ');
}

/**
 * How `--wait` prints changes: for a few jobs one line per change (`12  Waiting -> Running
 * (Application)`), for many one line of counts whenever the counts change.
 */
export function changePrinter(ids: readonly number[], out: (line: string) => void): FollowJobsOptions['onChange'] {
  if (ids.length <= FEW_JOBS) {
    const width = Math.max(...ids.map((id) => String(id).length));
    return (changes) => {
      for (const c of changes) {
        const move = c.from === null ? c.to : `${c.from} -> ${c.to}`;
        out(`${String(c.id).padEnd(width)}  ${move}${c.minorStatus ? `  (${c.minorStatus})` : ''}`.trimEnd());
      }
    };
  }
  let last = '';
  return (_changes, latest, gone) => {
    const unseen = ids.length - latest.size - gone.size;
    const line = `${ids.length} jobs: ${countsLine(latest.values(), { 'not found': gone.size, 'not seen': unseen })}`;
    if (line !== last) out(line);
    last = line;
  };
}

/** At most this many jobs are named when `--wait` ends badly. */
const NAMED_JOBS = 20;

/** The end of `--wait`: its exit code, a line on success, the jobs that did not end Done otherwise. */
export function reportFollow(
  ids: readonly number[],
  r: FollowJobsResult,
  timeoutSeconds: number | undefined,
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  const n = ids.length;
  const notDone = r.jobs.filter((j) => j.status !== 'Done');
  if (!r.timedOut && notDone.length === 0 && r.notFound.length === 0) {
    out(n === 1 ? `job ${ids[0]} Done` : `all ${n} jobs Done`);
    return 0;
  }
  const width = Math.max(...ids.map((id) => String(id).length));
  const rows = [
    ...notDone.map((j) => `  ${String(j.id).padEnd(width)}  ${j.status}${j.minorStatus ? `  (${j.minorStatus})` : ''}`),
    ...r.notFound.map((id) => `  ${String(id).padEnd(width)}  not found (deleted?)`),
  ];
  if (r.timedOut) {
    const open = r.jobs.filter((j) => !isFinal(j.status));
    const unseen = n - r.jobs.length - r.notFound.length;
    const what = countsLine(open, { 'not seen': unseen });
    err(
      `wms: gave up after ${timeoutSeconds} s: ${open.length + unseen} of ${n} job${n === 1 ? ' is' : 's are'} not final yet` +
        ` (${what}); they go on ("wms job status ID..." shows them)`,
    );
  } else {
    err(`wms: ${rows.length} of ${n} job${n === 1 ? '' : 's'} did not end Done:`);
  }
  for (const line of rows.slice(0, NAMED_JOBS)) err(line);
  if (rows.length > NAMED_JOBS) err(`  ... and ${rows.length - NAMED_JOBS} more`);
  return 1;
}

/**
 * What a failed submission means for the user. A submission is not idempotent, so the CLI never
 * sends it twice. The server answers 503 WMS_DB_UNAVAILABLE for it only when `submitJobs`
 * threw, i.e. its one transaction failed before or during its COMMIT: nothing was stored,
 * except in the one window where the connection broke while the COMMIT itself was in flight
 * (PostgreSQL may have committed without the server hearing it). A refused connection means
 * the request never left; a reset one leaves the outcome unknown.
 */
export function submissionFailure(e: CliError): string {
  if (e.code === 'WMS_DB_UNAVAILABLE') {
    return (
      'database unavailable: the server says the submission was not applied (its transaction did not commit); ' +
      'submit again once the database is back. Only if the database went away during the commit itself can the jobs ' +
      'have been stored: "wms job list" shows them'
    );
  }
  if (e.code === 'UNREACHABLE' && /ECONNRESET|UND_ERR_SOCKET/.test(e.message)) {
    return `${e.message}; the connection broke after the submission was sent: check "wms job list" before submitting again`;
  }
  return e.message;
}

/**
 * The job ids of each submitted file: the server says how many jobs each JDL gave
 * (`jobsPerJdl`); an older server that does not say gave one job per file.
 */
function idsPerFile(files: readonly string[], answer: SubmitJobsAnswer): [string, number[]][] {
  const counts = answer.jobsPerJdl?.length === files.length ? answer.jobsPerJdl : files.map(() => 1);
  let next = 0;
  return files.map((f, i) => {
    const ids = answer.jobIds.slice(next, next + counts[i]!);
    next += counts[i]!;
    return [f, ids];
  });
}

/** The server's "JDL #k: " label (k counts from 1) at the start of `message` as the k-th file's name. */
function byFileName(message: string, files: readonly string[]): string {
  return message.replace(/^JDL #(\d+): /, (label, k: string) => {
    const file = files[Number(k) - 1];
    return file === undefined ? label : `${file}: `;
  });
}

const submit = clientCommand({
  name: ['job', 'submit'],
  usage: 'FILE... [--wait [--timeout SECONDS]]',
  summary: 'submit JDL files (several files: one submission, all stored or none)',
  details:
    'Local files in InputSandbox are packed into one tar.gz per JDL (each under its base name,\n' +
    'paths relative to the JDL file), uploaded, and replaced by SB:<sha256>; LFN: and SB: entries\n' +
    'are sent as they are. Each file may be parametric (expanded by the server); several files\n' +
    'are one submission: every job of every file stored, or none, and a JDL problem is printed\n' +
    'as file:line:column: message.\n\n' +
    `--wait follows the jobs until each is final (${FOLLOW_FINAL.join(', ')}):\n` +
    `one line per status change ("12  Waiting -> Running  (Application)"), or for more than\n` +
    `${FEW_JOBS} jobs one line of counts whenever they change. Exit code 0 when every job ended\n` +
    'Done; 1 otherwise (the jobs that did not are named with their minor status), or when\n' +
    "--timeout passed first. Changes come over the services' event stream (a websocket),\n" +
    'or by polling once a second where it cannot be opened.\n' +
    'Leaving (Ctrl-C, --timeout) stops the following only: the jobs go on. With --json the\n' +
    'progress goes to stderr and stdout gets {jobIds, jobs, notFound, timedOut} at the end.',
  options: {
    wait: { type: 'boolean', short: 'w', description: 'follow the jobs until they are final; exit 1 unless all are Done' },
    timeout: { type: 'string', value: 'SECONDS', description: 'with --wait: give up after SECONDS (exit code 1)' },
  },
  positionals: [1, Infinity],
  async run(values, files, io) {
    const wait = flag(values, 'wait');
    const timeout = int(values, 'timeout', 1);
    if (timeout !== undefined && !wait) throw new UsageError('job submit: --timeout goes with --wait');
    const asJson = flag(values, 'json');
    const client = clientFrom(io);
    const jdls: string[] = [];
    for (const f of files) jdls.push(await prepareJdl(client, f, io));
    const body: SubmitJobsRequest = jdls.length === 1 ? { jdl: jdls[0]! } : { jdls };
    let answer: SubmitJobsAnswer;
    try {
      // Never sent twice (a retry could store the jobs twice): see submissionFailure.
      answer = await client.json<SubmitJobsAnswer>('POST', '/api/jobs', body);
    } catch (e) {
      if (e instanceof CliError) throw new CliError(byFileName(submissionFailure(e), files), e.problems, files, e.code);
      throw e;
    }
    const say = asJson && wait ? io.err : io.out;
    if (asJson) {
      if (!wait) io.out(json(answer));
    } else if (files.length === 1) {
      const ids = answer.jobIds;
      io.out(`${files[0]}: ${ids.length === 1 ? `job ${ids[0]}` : `${ids.length} jobs: ${idRanges(ids)}`}`);
    } else {
      io.out(
        table(
          ['FILE', 'JOB'],
          idsPerFile(files, answer).map(([f, ids]) => [f, idRanges(ids)]),
        ),
      );
    }
    if (!wait) return 0;

    const ids = answer.jobIds;
    const result = await followJobs(ids, statusFetcher(client), {
      deadline: timeout === undefined ? null : Date.now() + timeout * 1000,
      onChange: changePrinter(ids, say),
      onOutage: (m) => io.err(`wms: ${m}; still trying`),
      openStream: (open) => openJobStream(client.url, resolveClientConfig(io.env, io.home, io.cwd, readTextOrNull).token, open),
    });
    if (asJson) io.out(json({ jobIds: ids, jobs: result.jobs, notFound: result.notFound, timedOut: result.timedOut }));
    return reportFollow(ids, result, timeout, asJson ? io.err : io.out, io.err);
  },
});

const status = clientCommand({
  name: ['job', 'status'],
  usage: 'ID...',
  summary: 'status of jobs',
  positionals: [1, Infinity],
  async run(values, positionals, io) {
    const ids = jobIds(positionals);
    const answer = await clientFrom(io).json<JobStatusList>('GET', `/api/jobs/status?ids=${ids.join(',')}`);
    if (flag(values, 'json')) io.out(json(answer));
    else if (answer.jobs.length > 0) io.out(statusTable(answer.jobs));
    for (const id of answer.notFound) io.err(`wms: job ${id} not found`);
    return answer.notFound.length > 0 ? 1 : 0;
  },
});

const logging = clientCommand({
  name: ['job', 'logging'],
  usage: 'ID...',
  summary: 'status history of jobs (status, minor status, application status, source, time)',
  positionals: [1, Infinity],
  async run(values, positionals, io) {
    const client = clientFrom(io);
    const all: JobHistory[] = [];
    for (const id of jobIds(positionals)) {
      all.push(await client.json<JobHistory>('GET', `/api/jobs/${id}/history`));
    }
    if (flag(values, 'json')) {
      io.out(json(all.length === 1 ? all[0] : all));
      return 0;
    }
    io.out(
      all
        .map(
          ({ jobId, history }) =>
            (all.length > 1 ? `job ${jobId}\n` : '') +
            table(
              ['STATUS', 'MINOR STATUS', 'APPLICATION', 'SOURCE', 'TIME'],
              history.map((h) => [h.status, h.minorStatus, h.applicationStatus, h.source, shortTime(h.at)]),
            ),
        )
        .join('\n\n'),
    );
    return 0;
  },
});

type BulkVerb = 'kill' | 'reschedule' | 'delete';
type BulkFilter = NonNullable<BulkActionRequest['filter']>;

/** The options of `wms job kill|reschedule|delete` that select jobs (as `wms job list` does). */
const SELECTION_OPTIONS = ['status', 'group', 'site', 'owner', 'since', 'until'] as const;

/** The selection options as the API's filter (statuses and times checked as `wms job list` does); null: none given. */
function bulkFilter(values: OptionValues): BulkFilter | null {
  if (!SELECTION_OPTIONS.some((k) => values[k] !== undefined)) return null;
  const q = jobListQuery(values);
  const filter: BulkFilter = {};
  if (q.has('status')) filter.status = q.getAll('status') as JobState[];
  for (const k of ['site', 'group', 'owner', 'since', 'until'] as const) {
    const v = q.get(k);
    if (v !== null) filter[k] = v;
  }
  return filter;
}

/** `25 Done, 5 Failed`: the skipped jobs by status, in the order of the state table. */
function skippedCounts(r: BulkResult): string {
  return JOB_STATES.filter((s) => r.skippedByStatus[s] > 0)
    .map((s) => `${r.skippedByStatus[s]} ${s}`)
    .join(', ');
}

/** `killed 120 jobs; 30 skipped (already final: 25 Done, 5 Failed); 2 failed` (a dry run: `would kill ...`). */
function bulkSummary(action: BulkVerb, past: string, r: BulkResult): string {
  const n = r.succeededCount;
  const parts = [`${r.dryRun ? `would ${action}` : past} ${n} job${n === 1 ? '' : 's'}`];
  if (r.skipped > 0) parts.push(`${r.skipped} skipped (already ${action === 'kill' ? 'final' : 'deleted'}: ${skippedCounts(r)})`);
  if (r.failed.length > 0) parts.push(`${r.failed.length} failed`);
  return parts.join('; ') + (r.dryRun ? '; nothing changed (dry run)' : '');
}

/** The per-job table of `ids`: each changed (or would be), skipped (already where the action leads) or failed. */
function bulkTable(action: BulkVerb, past: string, ids: readonly number[], r: BulkResult): string {
  const done = new Set(r.succeeded);
  const failed = new Map(r.failed.map((f) => [f.id, f]));
  const skippedWhy = action === 'kill' ? 'already final' : 'already deleted';
  const rows = [...new Set(ids)].map((id) => {
    const f = failed.get(id);
    if (f) return [id, 'failed', `${f.code}: ${f.message}`];
    if (done.has(id)) return [id, r.dryRun ? `would be ${past}` : past, ''];
    return [id, 'skipped', skippedWhy];
  });
  return table(['ID', 'RESULT', 'REASON'], rows);
}

/** The answer for a selection: the summary, then the table of the jobs that failed. */
function selectionText(action: BulkVerb, past: string, r: BulkResult): string {
  const summary = bulkSummary(action, past, r);
  return r.failed.length === 0
    ? summary
    : `${summary}\n${bulkTable(
        action,
        past,
        r.failed.map((f) => f.id),
        r,
      )}`;
}

/** Asks `question [y/N]` on the terminal; true for y or yes. */
async function confirmed(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^\s*y(es)?\s*$/i.test(await rl.question(`${question} [y/N] `));
  } finally {
    rl.close();
  }
}

/**
 * Whether to go on with `action` on a selection: yes with `--yes`; on a terminal, when the
 * user says so after a dry run has counted the jobs (none to change: no question); without a
 * terminal, a usage error (a script must say `--yes`).
 */
async function selectionConfirmed(client: ApiClient, action: BulkVerb, filter: BulkFilter, values: OptionValues): Promise<boolean> {
  if (flag(values, 'yes')) return true;
  if (!process.stdin.isTTY) {
    throw new UsageError(`wms job ${action} with a selection asks for confirmation and there is no terminal: pass --yes`);
  }
  const preview = await client.json<BulkResult>('POST', `/api/jobs/${action}`, { filter, dryRun: true });
  const n = preview.succeededCount;
  return n === 0 || confirmed(`${action} ${n} job${n === 1 ? '' : 's'}?`);
}

function bulk(action: BulkVerb, past: string, summary: string): CommandSpec {
  return clientCommand({
    name: ['job', action],
    usage: '[ID...] [--status S] [--group G] [--site S] [--owner U] [--since T] [--until T] [--dry-run] [--yes]',
    summary,
    details:
      'Give job ids, or select jobs with the options (as "wms job list" does; not both). Jobs\n' +
      `already ${action === 'kill' ? 'final (Done, Completed, Failed, Killed, Deleted)' : 'Deleted'} are skipped and counted, not failures.\n` +
      'A selection asks for confirmation on a terminal (--yes: it does not; without a terminal\n' +
      '--yes is required). Exit code 1 when a job failed.',
    options: {
      status: { type: 'string', multiple: true, value: 'S', description: `jobs in status S (repeat, or S1,S2): ${JOB_STATES.join(' ')}` },
      group: { type: 'string', value: 'G', description: 'jobs of job group G' },
      site: { type: 'string', value: 'S', description: 'jobs at site S' },
      owner: { type: 'string', value: 'U', description: "user U's jobs (admins)" },
      since: { type: 'string', value: 'T', description: 'submitted at or after T: a date (ISO 8601) or a duration ago (1h, 7d)' },
      until: { type: 'string', value: 'T', description: 'submitted before T: a date (ISO 8601) or a duration ago (1h, 7d)' },
      'dry-run': { type: 'boolean', description: 'say what would happen, change nothing' },
      yes: { type: 'boolean', short: 'y', description: 'act on a selection without asking' },
    },
    positionals: [0, Infinity],
    async run(values, positionals, io) {
      const ids = jobIds(positionals);
      const filter = bulkFilter(values);
      if (ids.length > 0 && filter) {
        throw new UsageError('give job ids or a selection (--status, --group, --site, --owner, --since, --until), not both');
      }
      if (ids.length === 0 && !filter) {
        throw new UsageError('give job ids, or select jobs with --status, --group, --site, --owner, --since or --until');
      }
      const client = clientFrom(io);
      const dryRun = flag(values, 'dry-run');
      if (filter && !dryRun && !(await selectionConfirmed(client, action, filter, values))) {
        io.err('wms: nothing done');
        return 0;
      }
      const body: BulkActionRequest = { ...(filter ? { filter } : { ids }), ...(dryRun ? { dryRun } : {}) };
      const r = await client.json<BulkResult>('POST', `/api/jobs/${action}`, body);
      if (flag(values, 'json')) io.out(json(r));
      else if (!filter) io.out(bulkTable(action, past, ids, r) + (dryRun ? '\nnothing changed (dry run)' : ''));
      else io.out(selectionText(action, past, r));
      return r.failed.length > 0 ? 1 : 0;
    },
  });
}

/** `GET /api/jobs` with the filters of `wms job list`; a UsageError names a malformed one. */
/** The query of `wms job list` (filters and page) from its options. */
function jobListQuery(values: OptionValues): URLSearchParams {
  const q = new URLSearchParams();
  for (const s of strs(values, 'status')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)) {
    const state = JOB_STATES.find((k) => k.toLowerCase() === s.toLowerCase());
    if (!state || !isJobState(state)) throw new UsageError(`--status: "${s}" is not a job status (${JOB_STATES.join(', ')})`);
    q.append('status', state);
  }
  for (const k of ['site', 'group', 'owner', 'search'] as const) {
    const v = str(values, k);
    if (v !== undefined) q.set(k, v);
  }
  for (const k of ['since', 'until'] as const) {
    const v = str(values, k);
    if (v !== undefined) q.set(k, pointInTime(k, v).toISOString());
  }
  const pilot = int(values, 'pilot', 1);
  if (pilot !== undefined) q.set('pilot', String(pilot));
  const limit = int(values, 'limit', 1);
  const offset = int(values, 'offset', 0);
  if (limit !== undefined) q.set('limit', String(limit));
  if (offset !== undefined) q.set('offset', String(offset));
  return q;
}

/**
 * `--since`/`--until` as a time: a date (`2026-11-22`, `2026-11-22T10:00:00Z`) or a duration
 * ago with its unit (`90m`, `1h`, `7d`, `2w`).
 */
function pointInTime(option: string, v: string, now = Date.now()): Date {
  const ago = /^\s*\d+\s*[smhdw]\s*$/i.test(v) ? parseDuration(v) : null;
  if (ago !== null) return new Date(now - ago * 1000);
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) {
    throw new UsageError(`--${option}: "${v}" is not a date or a duration ago (e.g. 2026-11-22, 2026-11-22T10:00:00Z, 1h, 7d)`);
  }
  return d;
}

/** `path?query`, or `path` alone when the query is empty. */
function withQuery(path: string, q: URLSearchParams): string {
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

/** `Total for query: 330 jobs; 12 Waiting, 3 Running, 315 Done` (condor_q's last line), states in their order. */
function totalLine(counts: JobCounts): string {
  const parts = JOB_STATES.filter((s) => (counts.counts[s] ?? 0) > 0).map((s) => `${counts.counts[s]} ${s}`);
  return `Total for query: ${counts.total} job${counts.total === 1 ? '' : 's'}${parts.length > 0 ? `; ${parts.join(', ')}` : ''}`;
}

/** A page of `wms job list`: the table (when not empty) and `1-100 of 2345 jobs`. */
function jobListText(answer: JobList): string {
  const from = answer.jobs.length === 0 ? 0 : answer.offset + 1;
  const range = `${from}-${answer.offset + answer.jobs.length} of ${answer.total} jobs`;
  return answer.jobs.length > 0 ? `${statusTable(answer.jobs)}\n${range}` : range;
}

const list = clientCommand({
  name: ['job', 'list'],
  usage: '[--status S] [--site S] [--group G] [--owner U] [--since T] [--until T] [--search Q] [--pilot ID] [--limit N] [--offset N]',
  summary: 'list jobs, newest first, with the total for the query by status',
  options: {
    status: { type: 'string', multiple: true, value: 'S', description: `only in status S (repeat, or S1,S2): ${JOB_STATES.join(' ')}` },
    site: { type: 'string', value: 'S', description: 'only at site S' },
    group: { type: 'string', value: 'G', description: 'only of job group G' },
    owner: { type: 'string', value: 'U', description: "only user U's jobs (admins)" },
    since: { type: 'string', value: 'T', description: 'submitted at or after T: a date (ISO 8601) or a duration ago (1h, 7d)' },
    until: { type: 'string', value: 'T', description: 'submitted before T: a date (ISO 8601) or a duration ago (1h, 7d)' },
    search: { type: 'string', value: 'Q', description: 'job name or id contains Q' },
    pilot: { type: 'string', value: 'ID', description: 'only the jobs pilot ID holds or last ran' },
    limit: { type: 'string', value: 'N', description: 'at most N jobs (default 100)' },
    offset: { type: 'string', value: 'N', description: 'skip the first N jobs' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const client = clientFrom(io);
    const q = jobListQuery(values);
    const answer = await client.json<JobList>('GET', withQuery('/api/jobs', q));
    if (flag(values, 'json')) {
      io.out(json(answer));
      return 0;
    }
    q.delete('limit');
    q.delete('offset');
    const counts = await client.json<JobCounts>('GET', withQuery('/api/jobs/summary', q));
    io.out(`${jobListText(answer)}\n${totalLine(counts)}`);
    return 0;
  },
});

const jdlCommand = answerCommand<JobDetail>({
  name: ['job', 'jdl'],
  usage: 'ID',
  summary: "a job's JDL as stored (parametric jobs: expanded, with %j and the parameters in place)",
  positionals: [1, 1],
  path: (positionals) => `/api/jobs/${jobIds(positionals)[0]}`,
  text: (job) => job.jdl,
});

/** A number for a table: integers as they are, others with at most `digits` decimals. */
function rounded(n: number | null, digits = 2): string {
  if (n === null) return '-';
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(digits)));
}

const heartbeats = answerCommand<JobHeartbeats>({
  name: ['job', 'heartbeats'],
  usage: 'ID [--limit N]',
  summary: "a running job's last heartbeats: CPU, wall clock, memory, free disk, load",
  options: { limit: { type: 'string', value: 'N', description: 'the last N heartbeats (default and most: 200)' } },
  positionals: [1, 1],
  path: (positionals, values) => {
    const limit = int(values, 'limit', 1);
    return withQuery(
      `/api/jobs/${jobIds(positionals)[0]}/heartbeats`,
      new URLSearchParams(limit === undefined ? {} : { limit: String(limit) }),
    );
  },
  text: ({ jobId, heartbeats: beats }) =>
    beats.length === 0
      ? `job ${jobId} has sent no heartbeat`
      : table(
          ['AT', 'CPU', 'WALL', 'RSS MB', 'DISK FREE MB', 'LOAD'],
          beats.map((h) => [
            shortTime(h.at),
            humanDuration(h.cpuSeconds),
            humanDuration(h.wallSeconds),
            rounded(h.rssMb, 1),
            rounded(h.diskFreeMb, 0),
            rounded(h.loadAverage),
          ]),
        ),
});

const parameters = answerCommand<JobParameters>({
  name: ['job', 'parameters'],
  usage: 'ID',
  summary: 'parameters reported about a job',
  positionals: [1, 1],
  path: (positionals) => `/api/jobs/${jobIds(positionals)[0]}/parameters`,
  text: ({ jobId, parameters: p }) =>
    Object.keys(p).length === 0
      ? `job ${jobId} has no parameters yet`
      : table(
          ['NAME', 'VALUE'],
          Object.entries(p)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, value]) => [name, /^-?\d+\.\d{3,}$/.test(value) ? rounded(Number(value), 3) : value]),
        ),
});

const explain = answerCommand<ExplainJob>({
  name: ['job', 'explain'],
  usage: 'ID',
  summary: 'why a job waits: which registered queues could run it, and what stops it',
  positionals: [1, 1],
  path: (positionals) => `/api/jobs/${jobIds(positionals)[0]}/explain`,
  text: formatExplainJob,
});

/** Downloads sandbox `sha256` into `file`, checking that the bytes are the ones named. */
async function downloadChecked(client: ApiClient, sha256: string, file: string): Promise<void> {
  const body = await client.downloadSandbox(sha256);
  const hash = createHash('sha256');
  try {
    await pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(file),
    );
  } catch (e) {
    throw new CliError(`output sandbox ${sha256}: download failed (${(e as Error).message})`);
  }
  const got = hash.digest('hex');
  if (got !== sha256) throw new CliError(`output sandbox ${sha256}: the server sent other bytes (SHA-256 ${got})`);
}

/** The non-directory entries of a tar.gz, in archive order. */
async function archiveFiles(file: string): Promise<string[]> {
  const names: string[] = [];
  await tarList({ file, onReadEntry: (e) => void (e.type !== 'Directory' && names.push(e.path)) });
  return names;
}

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const output = clientCommand({
  name: ['job', 'output'],
  usage: 'ID [--dir D]',
  summary: "download a job's output sandbox and unpack it (default into ./job-<ID>-output)",
  details:
    'Each output archive is checked before anything is written (no absolute paths, no "..", no\n' +
    'links out of D, no devices, at most 10,000 entries and 1 GiB): an unsafe archive is refused\n' +
    'whole. Files already in D with the same names are replaced. Prints the files unpacked.',
  options: {
    dir: { type: 'string', short: 'd', value: 'D', description: 'where to unpack (default ./job-<ID>-output; created when missing)' },
  },
  positionals: [1, 1],
  async run(values, positionals, io) {
    const [id] = jobIds(positionals);
    const client = clientFrom(io);
    const answer = await client.json<JobOutput>('GET', `/api/jobs/${id}/output`);
    if (answer.sandboxes.length === 0) {
      throw new CliError(
        isFinal(answer.status)
          ? `job ${id} is ${answer.status} but uploaded no output sandbox`
          : `job ${id} is ${answer.status}: no output yet`,
      );
    }
    const dir = str(values, 'dir') ?? `job-${id}-output`;
    const dest = resolve(io.cwd, dir);
    const tmp = await mkdtemp(join(tmpdir(), 'wms-output-'));
    const files: string[] = [];
    let bytes = 0;
    try {
      const archives: string[] = [];
      for (const sb of answer.sandboxes) {
        const file = join(tmp, `${sb.sha256}.tar.gz`);
        await downloadChecked(client, sb.sha256, file);
        archives.push(file);
      }
      for (const [i, file] of archives.entries()) {
        const sha = answer.sandboxes[i]!.sha256;
        const r = await unpackSandbox(file, dest, { label: `output sandbox ${sha.slice(0, 12)} of job ${id}` });
        bytes += r.bytes;
        for (const f of await archiveFiles(file)) if (!files.includes(f)) files.push(f);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    if (flag(values, 'json')) {
      io.out(json({ jobId: id, status: answer.status, dir: dest, sandboxes: answer.sandboxes, files }));
      return 0;
    }
    for (const f of files) io.out(join(dir, f));
    const n = answer.sandboxes.length;
    io.out(
      `job ${id} (${answer.status}): ${files.length} file${files.length === 1 ? '' : 's'}, ${bytesText(bytes)}, ` +
        `from ${n} output sandbox${n === 1 ? '' : 'es'} into ${dir}`,
    );
    return 0;
  },
});

export const jobCommands: CommandSpec[] = [
  submit,
  status,
  logging,
  bulk('kill', 'killed', 'kill jobs'),
  bulk('reschedule', 'rescheduled', 'reschedule jobs (past MaxRescheduling, 3 by default, a job fails)'),
  bulk('delete', 'deleted', 'delete jobs'),
  list,
  jdlCommand,
  parameters,
  heartbeats,
  explain,
  output,
];
