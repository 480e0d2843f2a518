/**
 * What a running job reports (routes: `services/plugins/job-reports.ts`), with the job token
 * minted at match time (bound to one job and its pilot): status changes with parameters, and
 * heartbeats whose answer carries the job's pending commands (each delivered once). And for the
 * owner (users on their own jobs, admins on any): where the job's outputs are.
 *
 * Job tokens are short-lived (`tokens.jobTtl`, 1 h): a heartbeat or status answer carries a new
 * one (`token`, `tokenExpiresAt`) once the token used is past half its life. A job token dies
 * with its job: once the job is Done, Failed, Killed or Deleted every call answers 403 with
 * `jobTokenDeadMessage` (which names the state, so the wrapper knows why it was stopped).
 *
 * A job token of a match that no longer holds the job (the job was rescheduled, and maybe
 * matched by another pilot) is refused with `JOB_NOT_HELD_CODE` (409) on both routes, before
 * anything else: the wrapper that holds it kills its payload. A report repeated with the same
 * `reportId` is answered accepted and `duplicate`, and applied once (db/ops/job-reports.ts).
 *
 * Heartbeats are group-committed: those that arrive while earlier ones are being written go
 * together in one statement (`heartbeatsOf`, core/group-commit.ts), each caller still answered with its own job's
 * status and commands, and the same 409 / 403 refusals.
 */
import { WmsError } from '../../core/errors.js';
import { GroupCommit } from '../../core/group-commit.js';
import type { JobPrincipal, Principal } from '../../core/identity.js';
import { JOB_NOT_HELD_CODE, jobNotHeldMessage, jobTokenDeadMessage, type RenewedToken } from '../../core/pilot-protocol.js';
import {
  jobSandboxesOf,
  jobTokenDead,
  recordHeartbeat,
  recordHeartbeats,
  reportJobStatus as recordJobStatus,
  type HeartbeatItem,
  type HeartbeatResult,
} from '../../db/index.js';
import type { HeartbeatAnswer, HeartbeatReport, JobOutput, JobStatusAnswer, JobStatusReport } from '../../api/index.js';
import type { ServiceContext } from '../context.js';
import { visibleJob } from './jobs.js';

/** A job report's route: the job id of the path, and the bearer token used (renewed past half its life). */
export interface JobReportInput<T> {
  id: number;
  token: string | null;
  report: T;
}

/** The job token's principal, checked against the job id of the route. */
function jobTokenFor(p: Principal, id: number): JobPrincipal {
  const j = p as JobPrincipal;
  if (j.jobId !== id) throw new WmsError('WMS_FORBIDDEN', `this job token is bound to job ${j.jobId}, not ${id}`);
  return j;
}

/**
 * A new token for the caller when the one it used is past half its life (`{}` otherwise):
 * same principal, the full lifetime `ttlSeconds` from now.
 */
async function renewalFor(ctx: ServiceContext, token: string | null, ttlSeconds: number): Promise<Partial<RenewedToken>> {
  if (token === null) return {};
  const signer = await ctx.signer();
  const t = await signer.inspect(token);
  const now = ctx.clock().getTime();
  const life = t.expiresAt.getTime() - t.issuedAt.getTime();
  if (!Number.isFinite(life) || t.expiresAt.getTime() - now > life / 2) return {};
  const renewed = await signer.sign(t.principal, ttlSeconds);
  return { token: renewed.token, tokenExpiresAt: renewed.expiresAt.toISOString() };
}

/** Records the status the job wrapper reports; 409 when its match no longer holds the job, 403 once the job is over. */
export async function reportJobStatus(
  ctx: ServiceContext,
  caller: Principal,
  input: JobReportInput<JobStatusReport>,
): Promise<JobStatusAnswer> {
  const p = jobTokenFor(caller, input.id);
  const { status, minorStatus, applicationStatus, parameters, reportId } = input.report;
  const { held, ...result } = await recordJobStatus(
    ctx.handle,
    p.jobId,
    p.pilotId,
    {
      status,
      minorStatus,
      ...(applicationStatus !== undefined ? { applicationStatus } : {}),
      ...(parameters ? { parameters } : {}),
      ...(reportId !== undefined ? { reportId } : {}),
    },
    p.pilotId === null ? 'JobWrapper' : `JobWrapper:pilot ${p.pilotId}`,
  );
  if (!held && result.status !== 'Deleted') throw new WmsError(JOB_NOT_HELD_CODE, jobNotHeldMessage(p.jobId));
  if (result.duplicate) return result;
  if (!result.accepted && jobTokenDead(result.status)) {
    throw new WmsError('WMS_FORBIDDEN', jobTokenDeadMessage(p.jobId, result.status));
  }
  // Renewed only for a report taken (the job is still this pilot's), and not the last one.
  if (!result.accepted || jobTokenDead(result.status)) return result;
  return { ...result, ...(await renewalFor(ctx, input.token, ctx.config.tokens.jobTtlSeconds)) };
}

/** Heartbeat statements in flight at once per process; heartbeats arriving meanwhile wait and go together. */
const HEARTBEAT_STATEMENTS = 4;
/** The most heartbeats one statement writes. */
const HEARTBEAT_BATCH = 200;

/**
 * Group commit for heartbeats (core/group-commit.ts): a heartbeat goes to the database at once
 * when fewer than `HEARTBEAT_STATEMENTS` statements are in flight; otherwise it waits, and each
 * statement that ends takes the waiting ones (up to `HEARTBEAT_BATCH`, one per job) in one
 * statement (`recordHeartbeats`). Each caller gets its own job's answer (status, commands,
 * held). A batch that fails (a deadlock with another writer) is retried one heartbeat at a time.
 */
const batchers = new WeakMap<ServiceContext, GroupCommit<HeartbeatItem, HeartbeatResult>>();

function heartbeatsOf(ctx: ServiceContext): GroupCommit<HeartbeatItem, HeartbeatResult> {
  let b = batchers.get(ctx);
  if (!b) {
    b = new GroupCommit<HeartbeatItem, HeartbeatResult>({
      parallel: HEARTBEAT_STATEMENTS,
      maxBatch: HEARTBEAT_BATCH,
      key: (item) => item.jobId,
      one: (item) => recordHeartbeat(ctx.handle, item.jobId, item.pilotId, item.hb, 'Watchdog'),
      many: (items) => recordHeartbeats(ctx.handle, items, 'Watchdog'),
      retryAlone: () => true,
    });
    batchers.set(ctx, b);
  }
  return b;
}

/** Records a heartbeat and answers the job's pending commands; 409 when its match no longer holds the job, 403 once it is over. */
export async function sendHeartbeat(
  ctx: ServiceContext,
  caller: Principal,
  input: JobReportInput<HeartbeatReport>,
): Promise<HeartbeatAnswer> {
  const p = jobTokenFor(caller, input.id);
  const { held, ...answer } = await heartbeatsOf(ctx).write({ jobId: p.jobId, pilotId: p.pilotId, hb: input.report });
  if (!held && answer.status !== 'Deleted') throw new WmsError(JOB_NOT_HELD_CODE, jobNotHeldMessage(p.jobId));
  if (jobTokenDead(answer.status)) throw new WmsError('WMS_FORBIDDEN', jobTokenDeadMessage(p.jobId, answer.status));
  return { ...answer, ...(await renewalFor(ctx, input.token, ctx.config.tokens.jobTtlSeconds)) };
}

/** The job's output sandboxes, for whoever may see the job. */
export async function getJobOutput(ctx: ServiceContext, caller: Principal, input: { id: number }): Promise<JobOutput> {
  const row = await visibleJob(ctx, caller, input.id);
  return { jobId: row.id, status: row.status, sandboxes: await jobSandboxesOf(ctx.handle, row.id, 'Output') };
}
