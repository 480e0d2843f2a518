/**
 * `wms job …`: submit, status, logging, kill, reschedule, delete, list, parameters, explain.
 */
import { dirname, resolve } from 'node:path';
import { JOB_STATES, isJobState } from '../../core/job-states.js';
import type { BulkResult, HistoryEntry, JobSummary, ListAnswer, StatusAnswer } from '../api-types.js';
import type { ApiClient } from '../client.js';
import {
  CLIENT_ENV,
  clientFrom,
  flag,
  int,
  JSON_OPTION,
  jobIds,
  str,
  strs,
  type CommandSpec,
  type Io,
  readTextFile,
} from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { planInputSandbox, rewriteInputSandbox } from '../input-sandbox.js';
import { idRanges, json, shortTime, table } from '../output.js';
import { packInputSandbox } from '../sandbox-pack.js';
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

const submit: CommandSpec = {
  name: ['job', 'submit'],
  usage: 'FILE... [--json]',
  summary: 'submit JDL files (several files: one submission, all stored or none)',
  details:
    'Local files in InputSandbox are packed into one tar.gz per JDL (each under its base name,\n' +
    'paths relative to the JDL file), uploaded, and replaced by SB:<sha256>; LFN: and SB: entries\n' +
    'are sent as they are. A parametric JDL must be submitted on its own.',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [1, Infinity],
  async run(values, files, io) {
    const client = clientFrom(io);
    const jdls: string[] = [];
    for (const f of files) jdls.push(await prepareJdl(client, f, io));
    let answer: { jobIds: number[] };
    try {
      answer = await client.json<{ jobIds: number[] }>('POST', '/api/jobs', jdls.length === 1 ? { jdl: jdls[0] } : { jdls });
    } catch (e) {
      if (e instanceof CliError) throw new CliError(e.message, e.problems, files, e.code);
      throw e;
    }
    if (flag(values, 'json')) {
      io.out(json(answer));
    } else if (files.length === 1) {
      const ids = answer.jobIds;
      io.out(`${files[0]}: ${ids.length === 1 ? `job ${ids[0]}` : `${ids.length} jobs: ${idRanges(ids)}`}`);
    } else {
      io.out(table(['FILE', 'JOB'], files.map((f, i) => [f, answer.jobIds[i]])));
    }
    return 0;
  },
};

const status: CommandSpec = {
  name: ['job', 'status'],
  usage: 'ID... [--json]',
  summary: 'status of jobs',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [1, Infinity],
  async run(values, positionals, io) {
    const ids = jobIds(positionals);
    const answer = await clientFrom(io).json<StatusAnswer>('GET', `/api/jobs/status?ids=${ids.join(',')}`);
    if (flag(values, 'json')) io.out(json(answer));
    else if (answer.jobs.length > 0) io.out(statusTable(answer.jobs));
    for (const id of answer.notFound) io.err(`wms: job ${id} not found`);
    return answer.notFound.length > 0 ? 1 : 0;
  },
};

const logging: CommandSpec = {
  name: ['job', 'logging'],
  usage: 'ID... [--json]',
  summary: 'status history of jobs (status, minor status, application status, source, time)',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [1, Infinity],
  async run(values, positionals, io) {
    const client = clientFrom(io);
    const all: { jobId: number; history: HistoryEntry[] }[] = [];
    for (const id of jobIds(positionals)) {
      all.push(await client.json<{ jobId: number; history: HistoryEntry[] }>('GET', `/api/jobs/${id}/history`));
    }
    if (flag(values, 'json')) {
      io.out(json(all.length === 1 ? all[0] : all));
      return 0;
    }
    io.out(
      all
        .map(({ jobId, history }) =>
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
};

function bulk(action: 'kill' | 'reschedule' | 'delete', past: string, summary: string): CommandSpec {
  return {
    name: ['job', action],
    usage: 'ID... [--json]',
    summary,
    options: { json: JSON_OPTION },
    env: CLIENT_ENV,
    positionals: [1, Infinity],
    async run(values, positionals, io) {
      const ids = jobIds(positionals);
      const r = await clientFrom(io).json<BulkResult>('POST', `/api/jobs/${action}`, { ids });
      if (flag(values, 'json')) {
        io.out(json(r));
      } else {
        const rows: (string | number)[][] = [
          ...r.succeeded.map((id) => [id, past, '']),
          ...r.failed.map((f) => [f.id, 'failed', `${f.code}: ${f.message}`]),
        ];
        io.out(table(['ID', 'RESULT', 'REASON'], rows));
      }
      return r.failed.length > 0 ? 1 : 0;
    },
  };
}

const list: CommandSpec = {
  name: ['job', 'list'],
  usage: '[--status S] [--site S] [--group G] [--owner U] [--since T] [--until T] [--search Q] [--limit N] [--offset N] [--json]',
  summary: 'list jobs, newest first',
  options: {
    status: { type: 'string', multiple: true, value: 'S', description: `only in status S (repeat, or S1,S2): ${JOB_STATES.join(' ')}` },
    site: { type: 'string', value: 'S', description: 'only at site S' },
    group: { type: 'string', value: 'G', description: 'only of job group G' },
    owner: { type: 'string', value: 'U', description: "only user U's jobs (admins)" },
    since: { type: 'string', value: 'T', description: 'submitted at or after T (ISO 8601)' },
    until: { type: 'string', value: 'T', description: 'submitted before T (ISO 8601)' },
    search: { type: 'string', value: 'Q', description: 'job name or id contains Q' },
    limit: { type: 'string', value: 'N', description: 'at most N jobs (default 100)' },
    offset: { type: 'string', value: 'N', description: 'skip the first N jobs' },
    json: JSON_OPTION,
  },
  env: CLIENT_ENV,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const q = new URLSearchParams();
    for (const s of strs(values, 'status').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
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
      if (v === undefined) continue;
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw new UsageError(`--${k}: "${v}" is not a date (e.g. 2026-11-22 or 2026-11-22T10:00:00Z)`);
      q.set(k, d.toISOString());
    }
    const limit = int(values, 'limit', 1);
    const offset = int(values, 'offset', 0);
    if (limit !== undefined) q.set('limit', String(limit));
    if (offset !== undefined) q.set('offset', String(offset));
    const qs = q.toString();
    const answer = await clientFrom(io).json<ListAnswer>('GET', `/api/jobs${qs ? `?${qs}` : ''}`);
    if (flag(values, 'json')) {
      io.out(json(answer));
      return 0;
    }
    if (answer.jobs.length > 0) io.out(statusTable(answer.jobs));
    const from = answer.jobs.length === 0 ? 0 : answer.offset + 1;
    io.out(`${from}-${answer.offset + answer.jobs.length} of ${answer.total} jobs`);
    return 0;
  },
};

const parameters: CommandSpec = {
  name: ['job', 'parameters'],
  usage: 'ID [--json]',
  summary: 'parameters reported about a job',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [1, 1],
  async run(values, positionals, io) {
    const [id] = jobIds(positionals);
    const answer = await clientFrom(io).json<{ jobId: number; parameters: Record<string, string> }>(
      'GET',
      `/api/jobs/${id}/parameters`,
    );
    if (flag(values, 'json')) io.out(json(answer));
    else if (Object.keys(answer.parameters).length === 0) io.out(`job ${id} has no parameters yet`);
    else io.out(table(['NAME', 'VALUE'], Object.entries(answer.parameters).sort(([a], [b]) => a.localeCompare(b))));
    return 0;
  },
};

const explain: CommandSpec = {
  name: ['job', 'explain'],
  usage: 'ID [--json]',
  summary: 'why a job waits: which registered queues could run it, and what stops it',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [1, 1],
  async run(values, positionals, io) {
    const [id] = jobIds(positionals);
    const answer = await clientFrom(io).json<unknown>('GET', `/api/jobs/${id}/explain`);
    io.out(flag(values, 'json') ? json(answer) : formatExplainJob(answer));
    return 0;
  },
};

export const jobCommands: CommandSpec[] = [
  submit,
  status,
  logging,
  bulk('kill', 'killed', 'kill jobs'),
  bulk('reschedule', 'rescheduled', 'reschedule jobs (past MaxRescheduling, 3 by default, a job fails)'),
  bulk('delete', 'deleted', 'delete jobs'),
  list,
  parameters,
  explain,
];
