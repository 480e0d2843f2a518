/**
 * The bulk insert of a submission: id allocation and the jobs with their history, each in one
 * statement whatever the number of jobs (columns travel as arrays through `unnest`, so the
 * 65,535-parameter limit of a statement never applies).
 */
import { MINOR } from '../../core/job-states.js';
import type { DbOrHandle } from '../open-db.js';
import { exec, rows } from './raw.js';

/** `n` fresh job ids, ascending, in one round trip. */
export async function allocateJobIds(db: DbOrHandle, n: number): Promise<number[]> {
  if (n <= 0) return [];
  const r = await rows<{ id: number }>(db, `select nextval(pg_get_serial_sequence('jobs', 'id')) as id from generate_series(1, $1::int)`, [
    n,
  ]);
  return r.map((x) => x.id).sort((a, b) => a - b);
}

/** One job to insert, its id allocated and its JDL final. */
export interface NewJob {
  id: number;
  owner: string;
  ownerGroup: string;
  vo: string;
  jobName: string;
  jobGroup: string;
  jobType: string;
  site: string;
  priority: number;
  cpuTime: number;
  taskQueueId: number;
  parameterNumber: number | null;
  jdl: string;
}

/**
 * Inserts the jobs as Waiting "Pilot Agent Submission" with two history rows each: Received
 * "Job accepted" (`source`), then Waiting "Pilot Agent Submission" (JobScheduling). One
 * statement: the history is fed by the insert's RETURNING.
 */
export async function insertJobs(db: DbOrHandle, jobs: readonly NewJob[], bulkId: number | null, source: string): Promise<void> {
  if (jobs.length === 0) return;
  const col = <T>(f: (j: NewJob) => T): T[] => jobs.map(f);
  await exec(
    db,
    `with ins as (
       insert into jobs (id, owner, owner_group, vo, job_name, job_group, job_type, site, user_priority, cpu_time,
                         task_queue_id, parameter_number, jdl, bulk_id, status, minor_status, application_status)
       select u.*, $14::bigint, 'Waiting'::job_status, $15::text, 'Unknown'
         from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::int[], $10::int[], $11::bigint[], $12::int[], $13::text[])
              as u(id, owner, owner_group, vo, job_name, job_group, job_type, site, user_priority, cpu_time,
                   task_queue_id, parameter_number, jdl)
       returning id
     ),
     hist as (
       insert into job_history (job_id, status, minor_status, application_status, source)
       select id, 'Received'::job_status, $16::text, 'Unknown', $17::text from ins
       union all
       select id, 'Waiting'::job_status, $15::text, 'Unknown', 'JobScheduling' from ins
     )
     select count(*) from ins`,
    [
      col((j) => j.id),
      col((j) => j.owner),
      col((j) => j.ownerGroup),
      col((j) => j.vo),
      col((j) => j.jobName),
      col((j) => j.jobGroup),
      col((j) => j.jobType),
      col((j) => j.site),
      col((j) => j.priority),
      col((j) => j.cpuTime),
      col((j) => j.taskQueueId),
      col((j) => j.parameterNumber),
      col((j) => j.jdl),
      bulkId,
      MINOR.pilotAgentSubmission,
      MINOR.jobAccepted,
      source,
    ],
  );
}

/** Links jobs to sandboxes (pairs given as two parallel arrays). Idempotent. */
export async function insertJobSandboxes(
  db: DbOrHandle,
  jobIds: readonly number[],
  sha256s: readonly string[],
  kind: 'Input' | 'Output',
): Promise<void> {
  if (jobIds.length === 0) return;
  await exec(
    db,
    `insert into job_sandboxes (job_id, sha256, kind)
     select job_id, sha256, $3::text from unnest($1::bigint[], $2::text[]) as u(job_id, sha256)
     on conflict do nothing`,
    [[...jobIds], [...sha256s], kind],
  );
}
