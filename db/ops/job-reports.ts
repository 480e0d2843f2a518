/**
 * What a running job's wrapper reports (with its job token): status changes with parameters,
 * and heartbeats whose answer carries the job's pending commands.
 *
 * Every change is guarded twice: by the state table (`status = ANY(sourcesOf(target))`) and by
 * the pilot, so that a job token of a previous life (the job was rescheduled and matched again
 * elsewhere) can no longer touch the job. Running -> Running is a minor-status change (history
 * row, no state change), as DIRAC's logging records every step of the wrapper.
 *
 * A job token dies with its job: once the job is Done, Failed, Killed or Deleted
 * (`JOB_TOKEN_DEAD_STATES`) no report changes it (not even to Rescheduled or Deleted) and a
 * heartbeat writes nothing; the routes answer 403 then.
 *
 * Reports may come twice (the wrapper retries until it has an answer, and an answer can be
 * lost). A report with a `reportId` (1, 2, 3... per job and match) is applied only when its id
 * is above `jobs.report_seq` (the highest applied since the match, which resets it to 0), in
 * the same statement as the change; a repeat is answered accepted, `duplicate`, and writes
 * nothing (no history row, no parameters). Reports without one (admins, older pilots) are
 * applied as they come.
 */
import { sourcesOf, type JobState } from '../../core/job-states.js';
import { JOB_TOKEN_DEAD_STATES, type Heartbeat, type JobCommand } from '../../core/pilot-protocol.js';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { exec, rows } from '../queries/raw.js';

export interface JobReport {
  status: JobState;
  minorStatus: string;
  applicationStatus?: string;
  parameters?: Record<string, string>;
  /** The wrapper's sequence number of this report (see the module comment). */
  reportId?: number;
}

export interface JobReportResult {
  accepted: boolean;
  /** The job's status after the call. */
  status: JobState;
  /** The report was applied before (same or lower `reportId`): nothing was done. */
  duplicate?: boolean;
  /**
   * False when the job is held by another pilot than `pilotId` (or none): the job token is of an
   * earlier match. Always true for admins (`pilotId` null).
   */
  held: boolean;
}

/** The wrapper's steps: a report of one of these from the holding pilot is also a sign of life. */
const WRAPPER_STEPS: readonly JobState[] = ['Running', 'Completing', 'Done', 'Failed'];

/**
 * States the wrapper may move a job to, and from where (the table, plus staying Running), never
 * from a state in which its job token is dead. A Stalled job takes any step of the wrapper: the
 * report is a sign of life (a heartbeat revives it the same way), and one kept in the pilot's
 * journal through an outage must not be refused because the stalled-jobs agent got there first.
 */
function reportSources(to: JobState): readonly JobState[] {
  const from = to === 'Running' || to === 'Completing' ? [...sourcesOf(to), to] : sourcesOf(to);
  const revived = WRAPPER_STEPS.includes(to) && !from.includes('Stalled') ? [...from, 'Stalled' as JobState] : from;
  return revived.filter((s) => !jobTokenDead(s));
}

/** True when a job in `status` is over for its job token (Done, Failed, Killed, Deleted). */
export function jobTokenDead(status: JobState): boolean {
  return (JOB_TOKEN_DEAD_STATES as readonly string[]).includes(status);
}

/** A job's state and pilot, for the checks of a job token (one primary-key read); null: no job. */
export async function getJobTokenState(db: DbOrHandle, jobId: number): Promise<{ status: JobState; pilotId: number | null } | null> {
  const r = await rows<{ status: JobState; pilot_id: number | null }>(db, `select status, pilot_id from jobs where id = $1::bigint`, [
    jobId,
  ]);
  const x = r[0];
  return x ? { status: x.status, pilotId: x.pilot_id === null || x.pilot_id === undefined ? null : x.pilot_id } : null;
}

/** Sets job parameters (name -> value), replacing earlier values. */
export async function setJobParameters(db: DbOrHandle, jobId: number, parameters: Record<string, string>): Promise<void> {
  const names = Object.keys(parameters);
  if (names.length === 0) return;
  await exec(
    db,
    `insert into job_parameters (job_id, name, value)
     select $1::bigint, n, v from unnest($2::text[], $3::text[]) as t(n, v)
     on conflict (job_id, name) do update set value = excluded.value, at = now()`,
    [jobId, names, names.map((n) => parameters[n]!)],
  );
}

/**
 * Applies a wrapper's report to job `jobId` held by pilot `pilotId` (null: any pilot, for
 * admins). Entering Running the first time sets the start time and counts the job on its pilot.
 */
export async function reportJobStatus(
  db: DbOrHandle,
  jobId: number,
  pilotId: number | null,
  report: JobReport,
  source: string,
): Promise<JobReportResult> {
  const reportId = report.reportId ?? null;
  return dbOf(db).transaction(async (tx) => {
    const r = await rows<{ changed: boolean; status: JobState; first_start: boolean; held: boolean; duplicate: boolean }>(
      tx,
      `with before as (
         select id, status, start_exec_at, pilot_id, report_seq,
                ($6::bigint is null or pilot_id = $6::bigint) as held
           from jobs where id = $1::bigint for update
       ),
       fresh as (
         select b.* from before b where $8::int is null or b.report_seq < $8::int
       ),
       changed as (
         update jobs j
            set status = $3::job_status, minor_status = $4::text,
                application_status = coalesce($5::text, j.application_status),
                start_exec_at = case when $3::text = 'Running' then coalesce(j.start_exec_at, now()) else j.start_exec_at end,
                heartbeat_at = case when $3::text in ('Running', 'Completing') then now() else j.heartbeat_at end,
                end_exec_at = case when $3::text in ('Done', 'Failed', 'Completed', 'Killed') then coalesce(j.end_exec_at, now()) else j.end_exec_at end,
                report_seq = coalesce($8::int, j.report_seq),
                last_update_at = now()
           from fresh b
          where j.id = b.id and b.status = any($2::text[]::job_status[]) and b.held
         returning j.id, j.application_status, b.start_exec_at is null and $3::text = 'Running' as first_start
       ),
       hist as (
         insert into job_history (job_id, status, minor_status, application_status, source)
         select id, $3::job_status, $4::text, application_status, $7::text from changed
       )
       select exists (select 1 from changed) as changed,
              coalesce((select $3::text from changed), (select status::text from before)) as status,
              coalesce((select first_start from changed), false) as first_start,
              coalesce((select held from before), false) as held,
              coalesce((select held and not exists (select 1 from fresh) from before), false) as duplicate`,
      [
        jobId,
        [...reportSources(report.status)],
        report.status,
        report.minorStatus,
        report.applicationStatus ?? null,
        pilotId,
        source,
        reportId,
      ],
    );
    const row = r[0];
    if (!row || row.status === null) return { accepted: false, status: 'Deleted' as JobState, held: false };
    if (row.duplicate) return { accepted: true, status: row.status, duplicate: true, held: true };
    if (row.changed) {
      await setJobParameters(tx, jobId, report.parameters ?? {});
      if (row.first_start && pilotId !== null) {
        await exec(
          tx,
          `update pilots set jobs_run = jobs_run + 1, current_job_id = $2::bigint, last_update_at = now() where id = $1::bigint`,
          [pilotId, jobId],
        );
      }
    }
    return { accepted: row.changed, status: row.status, held: row.held };
  });
}

/** Marks the job's pending commands Sent and answers them (each is delivered once). */
export async function takeJobCommands(db: DbOrHandle, jobIds: readonly number[]): Promise<JobCommand[]> {
  if (jobIds.length === 0) return [];
  const r = await rows<{ job_id: number; command: string; arguments: string }>(
    db,
    `update job_commands set status = 'Sent', sent_at = now()
      where job_id = any($1::bigint[]) and status = 'Received'
      returning job_id, command, arguments`,
    [[...jobIds]],
  );
  return r.map((x) => ({ jobId: x.job_id, command: x.command, arguments: x.arguments }));
}

/**
 * Records a heartbeat of job `jobId` from pilot `pilotId`: the sign of life (a Stalled job comes
 * back to Running, as in DIRAC), the figures, the stdout peek as a parameter, and the job's
 * pending commands, marked Sent. A job no longer held by that pilot, or over, gets its status
 * only (the wrapper stops when it is not Running).
 */
export async function recordHeartbeat(
  db: DbOrHandle,
  jobId: number,
  pilotId: number | null,
  hb: Heartbeat,
  source: string,
): Promise<{ status: JobState; commands: JobCommand[]; held: boolean }> {
  return dbOf(db).transaction(async (tx) => {
    const r = await rows<{ status: JobState; held: boolean }>(
      tx,
      `select status, ($2::bigint is null or pilot_id = $2::bigint) as held from jobs where id = $1::bigint for update`,
      [jobId, pilotId],
    );
    const job = r[0];
    if (!job) return { status: 'Deleted' as JobState, commands: [], held: false };
    if (!job.held || jobTokenDead(job.status)) return { status: job.status, commands: [], held: job.held };
    let status = job.status;
    if (status === 'Stalled') {
      await exec(
        tx,
        `with revived as (
           update jobs set status = 'Running', heartbeat_at = now(), last_update_at = now()
            where id = $1::bigint returning id, minor_status, application_status
         )
         insert into job_history (job_id, status, minor_status, application_status, source)
         select id, 'Running', minor_status, application_status, $2::text from revived`,
        [jobId, source],
      );
      status = 'Running';
    } else if (status === 'Running' || status === 'Completing' || status === 'Matched') {
      // Matched too: the wrapper's Running report may still be on its way (reports travel
      // behind, in order, through the pilot's journal) while the payload already runs.
      await exec(tx, `update jobs set heartbeat_at = now() where id = $1::bigint`, [jobId]);
    }
    await exec(
      tx,
      `insert into job_heartbeats (job_id, cpu_seconds, wall_seconds, rss_mb, disk_free_mb, load_average)
       values ($1::bigint, $2::float8, $3::float8, $4::float8, $5::float8, $6::float8)`,
      [jobId, hb.cpuSeconds, hb.wallSeconds, hb.rssMb, hb.diskFreeMb ?? null, hb.loadAverage ?? null],
    );
    if (hb.stdoutTail !== undefined) await setJobParameters(tx, jobId, { StandardOutput: hb.stdoutTail });
    const commands = await takeJobCommands(tx, [jobId]);
    return { status, commands, held: true };
  });
}

/** Puts commands taken but not delivered (the socket closed) back for the next heartbeat. */
export async function returnJobCommands(db: DbOrHandle, commands: readonly JobCommand[]): Promise<void> {
  if (commands.length === 0) return;
  await exec(
    db,
    `update job_commands set status = 'Received', sent_at = null
      where job_id = any($1::bigint[]) and status = 'Sent' and sent_at > now() - interval '1 minute'`,
    [commands.map((c) => c.jobId)],
  );
}

/** Jobs of these pilots that have commands waiting (to push over their websockets). */
export async function pendingCommandsOfJobs(
  db: DbOrHandle,
  jobIds: readonly number[],
): Promise<{ jobId: number; pilotId: number | null }[]> {
  if (jobIds.length === 0) return [];
  const r = await rows<{ id: number; pilot_id: number | null }>(
    db,
    `select distinct j.id, j.pilot_id from jobs j join job_commands c on c.job_id = j.id
      where j.id = any($1::bigint[]) and c.status = 'Received'`,
    [[...jobIds]],
  );
  return r.map((x) => ({ jobId: x.id, pilotId: x.pilot_id === null ? null : x.pilot_id }));
}

/** One heartbeat of a batch (`recordHeartbeats`). */
export interface HeartbeatItem {
  jobId: number;
  pilotId: number | null;
  hb: Heartbeat;
}

/** What `recordHeartbeat` answers, per heartbeat. */
export interface HeartbeatResult {
  status: JobState;
  commands: JobCommand[];
  held: boolean;
}

/**
 * `recordHeartbeat` for many jobs in ONE statement (the services batch the heartbeats that arrive
 * while earlier ones are being written): the same checks, writes and answers, each heartbeat
 * answered with its own job's status, pending commands and `held`. Rows are locked in id order
 * (batches of several processes never deadlock with each other). The jobs of a batch must be
 * distinct (a job's commands go to one caller). Stdout peeks are written after it, in the same
 * transaction.
 */
export async function recordHeartbeats(db: DbOrHandle, items: readonly HeartbeatItem[], source: string): Promise<HeartbeatResult[]> {
  if (items.length === 0) return [];
  const params = [
    items.map((i) => i.jobId),
    items.map((i) => i.pilotId),
    items.map((i) => i.hb.cpuSeconds),
    items.map((i) => i.hb.wallSeconds),
    items.map((i) => i.hb.rssMb),
    items.map((i) => i.hb.diskFreeMb ?? null),
    items.map((i) => i.hb.loadAverage ?? null),
    [...JOB_TOKEN_DEAD_STATES],
    source,
  ];
  const tails = items.filter((i) => i.hb.stdoutTail !== undefined);
  const run = async (tx: DbOrHandle) => {
    const r = await rows<{ ord: number; held: boolean; status: JobState | null; commands: JobCommand[] }>(tx, HEARTBEATS_SQL, params, {
      name: 'wms_record_heartbeats',
    });
    const results = r.map((x) => ({ status: x.status ?? ('Deleted' as JobState), commands: x.commands, held: x.held }));
    for (const t of tails) {
      const res = results[items.indexOf(t)]!;
      if (res.held && !jobTokenDead(res.status)) await setJobParameters(tx, t.jobId, { StandardOutput: t.hb.stdoutTail! });
    }
    return results;
  };
  return tails.length === 0 ? run(db) : dbOf(db).transaction(run);
}

const HEARTBEATS_SQL = `
with input as (
  select t.ord, t.job_id, t.pilot_id, t.cpu, t.wall, t.rss, t.disk, t.load
    from unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[])
         with ordinality as t(job_id, pilot_id, cpu, wall, rss, disk, load, ord)
),
locked as (
  select id, status, pilot_id, minor_status, application_status from jobs
   where id = any($1::bigint[]) order by id for update
),
checked as (
  select i.*, l.status, l.minor_status, l.application_status,
         l.id is not null and (i.pilot_id is null or l.pilot_id = i.pilot_id) as held
    from input i left join locked l on l.id = i.job_id
),
live as (
  select * from checked where held and status::text <> all($8::text[])
),
touched as (
  update jobs j set heartbeat_at = now(),
                    status = case when l.status = 'Stalled' then 'Running'::job_status else j.status end,
                    last_update_at = case when l.status = 'Stalled' then now() else j.last_update_at end
    from live l
   where j.id = l.job_id and l.status in ('Stalled', 'Running', 'Completing', 'Matched')
  returning j.id
),
hist as (
  insert into job_history (job_id, status, minor_status, application_status, source)
  select job_id, 'Running', minor_status, application_status, $9::text from live where status = 'Stalled'
),
beats as (
  insert into job_heartbeats (job_id, cpu_seconds, wall_seconds, rss_mb, disk_free_mb, load_average)
  select job_id, cpu, wall, rss, disk, load from live order by ord
),
sent as (
  update job_commands c set status = 'Sent', sent_at = now()
   where c.job_id in (select job_id from live) and c.status = 'Received'
  returning c.id, c.job_id, c.command, c.arguments
)
select c.ord::int as ord, c.held,
       case when c.held and c.status = 'Stalled' then 'Running' else c.status::text end as status,
       coalesce((select json_agg(json_build_object('jobId', s.job_id, 'command', s.command, 'arguments', s.arguments) order by s.id)
                   from sent s where s.job_id = c.job_id), '[]'::json) as commands
  from checked c order by c.ord`;
