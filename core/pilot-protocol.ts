/**
 * What pilots and the services say to each other: request and answer bodies as TypeBox schemas
 * (the services validate with them; the pilot uses their static types). Pure.
 *
 * A pilot's life, all over HTTP with its pilot token (the job routes with the job token that
 * came with the match):
 *
 * | step | route |
 * | --- | --- |
 * | wrapper fetches the bundle (no token; SHA-256 embedded in the wrapper) | `GET /pilot/pilot.tar.gz` |
 * | wrapper fails before the pilot starts | `POST /api/pilots/self/status` `{status: Failed, reason, exitCode}` |
 * | pilot reads its settings (commands for its CE type, limits, its queue) | `GET /api/pilots/self/config` |
 * | clock-skew samples (no token) | `GET /api/time` |
 * | registration with environment, clock offset, DB12; answers a short-lived pilot token | `POST /api/pilots/self/register` |
 * | renew the short-lived pilot token (at half-life) | `POST /api/pilots/self/token` |
 * | remote log lines, in batches | `POST /api/pilots/self/logs` |
 * | commands pushed at once (kill) | websocket `GET /api/pilots/self/ws` |
 * | ask for work | `POST /api/match` |
 * | job status and parameters | `POST /api/jobs/:id/status` (job token) |
 * | heartbeat; the answer carries commands, and a renewed job token past half-life | `POST /api/jobs/:id/heartbeat` (job token) |
 * | sandboxes | `GET`/`PUT /api/sandboxes/:sha256` (job token) |
 * | end of the pilot | `POST /api/pilots/self/status` `{status: Done or Failed, reason, exitCode}` |
 *
 * Tokens die with what they stand for: a pilot token is refused (403) once its pilot is final
 * (Done, Failed, Aborted, Deleted), a job token once its job is Done, Failed, Killed or Deleted
 * (`jobTokenDeadMessage`; the pilot reads the job's state back from it).
 *
 * No job lost, none run twice. Every message a pilot sends may arrive twice, late, or after the
 * server restarted, and is safe so:
 * - a match carries the pilot's `claimId` (one per match attempt): a retried match whose first
 *   answer was lost answers the same job (with a fresh job token), never a second one; the
 *   pilot starts a payload only once a match answer (the server's acknowledgement that the job
 *   is its own) arrived;
 * - a job status report carries `reportId`, 1, 2, 3... per job and match in the order the
 *   wrapper made them: the server applies each once and answers a repeated one
 *   `{ accepted: true, duplicate: true }` without applying it again;
 * - a heartbeat is a sample (a repeat does no harm); output sandboxes are content-addressed;
 * - a job token whose job is now held by another pilot (rescheduled and matched again) is
 *   refused with `JOB_NOT_HELD_CODE` (409): the wrapper kills its payload.
 */
import { Type, type Static } from 'typebox';
import { JOB_STATES } from './job-states.js';

/** The environment variables the wrapper hands to the pilot. */
export const PILOT_ENV = {
  url: 'WMS_PILOT_URL',
  /** A 0600 file holding the pilot token; the pilot reads it and deletes it at once. */
  tokenFile: 'WMS_PILOT_TOKEN_FILE',
  stamp: 'WMS_PILOT_STAMP',
  workDir: 'WMS_PILOT_WORK_DIR',
  fsType: 'WMS_PILOT_FS_TYPE',
  /** The wrapper's own log file: the pilot sends its lines first. */
  wrapperLog: 'WMS_PILOT_WRAPPER_LOG',
  /** Tests only: seconds added to the pilot's own clock (an injected skew). */
  clockOffset: 'WMS_PILOT_TEST_CLOCK_OFFSET',
} as const;

/** The pilot commands, run in the order the config lists them. */
export const PILOT_COMMANDS = ['check-environment', 'clock-skew', 'db12', 'register', 'job-agent'] as const;
export type PilotCommandName = (typeof PILOT_COMMANDS)[number];

export const PilotConfigSchema = Type.Object({
  pilotId: Type.Integer(),
  stamp: Type.String(),
  site: Type.String(),
  ce: Type.String(),
  ceType: Type.String(),
  queue: Type.String(),
  vo: Type.String(),
  commands: Type.Array(Type.Enum(PILOT_COMMANDS)),
  /** Above this |offset| (seconds) the pilot is refused. */
  maxClockSkewSeconds: Type.Number(),
  clockSamples: Type.Integer({ minimum: 1 }),
  /** check-environment fails below this much free disk in the work dir (MB). */
  minDiskMb: Type.Number(),
  /** DB12 copies: one per allocated core. */
  processors: Type.Integer({ minimum: 1 }),
  ramMb: Type.Integer(),
  gpus: Type.Integer(),
  tags: Type.Array(Type.String()),
  requiredTags: Type.Array(Type.String()),
  platform: Type.Union([Type.String(), Type.Null()]),
  /** Wall-clock seconds the batch system gives this pilot. */
  timeLimitSeconds: Type.Number(),
  /** Stop asking for work when less than this is left (seconds). */
  minTimeLeftSeconds: Type.Number(),
  /** Job agent: first wait after no match (s); doubles up to `maxPollSeconds`. */
  pollSeconds: Type.Number(),
  maxPollSeconds: Type.Number(),
  stopAfterFailedMatches: Type.Integer({ minimum: 1 }),
  /** Jobs run at once (slots of this pilot). */
  slots: Type.Integer({ minimum: 1 }),
  heartbeatSeconds: Type.Number(),
  /** Remote log: flush after this many lines or seconds. */
  logBatchLines: Type.Integer({ minimum: 1 }),
  logFlushSeconds: Type.Number(),
  /** Input sandbox limits when unpacking. */
  sandboxMaxBytes: Type.Integer(),
  sandboxMaxEntries: Type.Integer(),
  /** How payloads are isolated from the pilot (pilot/isolation.ts); default auto. */
  isolation: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('bwrap'), Type.Literal('user'), Type.Literal('none')])),
  /** The Unix user payloads run as when the pilot is root; default nobody. */
  payloadUser: Type.Optional(Type.String()),
  /** A bubblewrap binary to use instead of bwrap on PATH. */
  bwrapPath: Type.Optional(Type.String()),
  /** The queue's environment: given to payloads only, never to the pilot. */
  payloadEnvironment: Type.Optional(Type.Record(Type.String(), Type.String())),
});
export type PilotConfig = Static<typeof PilotConfigSchema>;

export const TimeAnswerSchema = Type.Object({ now: Type.Number({ description: 'server clock, ms since the epoch' }) });
export type TimeAnswer = Static<typeof TimeAnswerSchema>;

/** What check-environment found (systeminformation, the work dir, the batch system). */
export const EnvironmentReportSchema = Type.Object(
  {
    hostname: Type.String(),
    os: Type.String(),
    kernel: Type.String(),
    cpuModel: Type.String(),
    cores: Type.Integer(),
    memoryMb: Type.Number(),
    workDir: Type.String(),
    fsType: Type.String(),
    diskFreeMb: Type.Number(),
    gpus: Type.Array(Type.String()),
    nodeVersion: Type.String(),
    batchSystem: Type.String({ description: 'slurm, htcondor, local, ...' }),
    batchJobId: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: true },
);
export type EnvironmentReport = Static<typeof EnvironmentReportSchema>;

export const RegisterRequestSchema = Type.Object({
  environment: EnvironmentReportSchema,
  clockOffsetSeconds: Type.Number(),
  benchmark: Type.Number({ description: 'DB12 score (the minimum over copies)' }),
  benchmarkDetails: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type RegisterRequest = Static<typeof RegisterRequestSchema>;

/** A renewed token and when it expires (ISO 8601). */
export const RenewedTokenSchema = Type.Object({
  token: Type.String(),
  tokenExpiresAt: Type.String({ format: 'date-time' }),
});
export type RenewedToken = Static<typeof RenewedTokenSchema>;

export const RegisterAnswerSchema = Type.Object({
  pilotId: Type.Integer(),
  status: Type.String({ description: 'Running, or Failed when refused' }),
  reason: Type.String(),
  /** When Running: a short-lived pilot token to use from now on (renewed at half-life). */
  token: Type.Optional(Type.String()),
  tokenExpiresAt: Type.Optional(Type.String({ format: 'date-time' })),
});
export type RegisterAnswer = Static<typeof RegisterAnswerSchema>;

export const PilotStatusReportSchema = Type.Object({
  status: Type.Union([Type.Literal('Running'), Type.Literal('Done'), Type.Literal('Failed')]),
  reason: Type.String({ maxLength: 2000 }),
  exitCode: Type.Optional(Type.Integer()),
});
export type PilotStatusReport = Static<typeof PilotStatusReportSchema>;

/** A claim id: what a pilot makes up per match attempt (random, URL-safe). */
export const MAX_CLAIM_ID_LENGTH = 64;
export const ClaimIdSchema = Type.String({
  minLength: 8,
  maxLength: MAX_CLAIM_ID_LENGTH,
  pattern: '^[A-Za-z0-9_-]+$',
  description: "the pilot's id of this match attempt: a retry with the same id answers the same job",
});

/** The largest report id (PostgreSQL int4). */
export const MAX_REPORT_ID = 2_147_483_647;

/**
 * The error code (body `code`, HTTP 409) of a job report or heartbeat whose job token is of a
 * match that no longer holds the job (another pilot, or the job was rescheduled): its payload
 * must be killed.
 */
export const JOB_NOT_HELD_CODE = 'WMS_JOB_NOT_HELD' as const;

/** The message that goes with `JOB_NOT_HELD_CODE`. */
export function jobNotHeldMessage(jobId: number): string {
  return `job ${jobId} is no longer this pilot's job (rescheduled, or matched again): stop its payload`;
}

export const LogBatchSchema = Type.Object({
  lines: Type.Array(Type.Object({ at: Type.Number({ description: 'ms since the epoch' }), line: Type.String({ maxLength: 16_384 }) }), {
    maxItems: 10_000,
  }),
});
export type LogBatch = Static<typeof LogBatchSchema>;

export const JobStatusReportSchema = Type.Object({
  status: Type.Enum(JOB_STATES),
  minorStatus: Type.String(),
  applicationStatus: Type.Optional(Type.String()),
  /** Job parameters to set (name -> value). */
  parameters: Type.Optional(Type.Record(Type.String(), Type.String())),
  /**
   * 1, 2, 3... per job and match, in the order the wrapper made its reports: a report whose id
   * is not above the last one applied is a repeat, answered and applied nowhere.
   */
  reportId: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REPORT_ID })),
});
export type JobStatusReport = Static<typeof JobStatusReportSchema>;

export const JobStatusAnswerSchema = Type.Object({
  accepted: Type.Boolean({ description: 'false when the job was no longer in a state that allows the change' }),
  status: Type.Enum(JOB_STATES),
  /** The report (its `reportId`) was applied before: nothing was done this time. */
  duplicate: Type.Optional(Type.Boolean()),
  /** A renewed job token, when the one used is past half its life: use it from now on. */
  token: Type.Optional(Type.String()),
  tokenExpiresAt: Type.Optional(Type.String({ format: 'date-time' })),
});
export type JobStatusAnswer = Static<typeof JobStatusAnswerSchema>;

export const HeartbeatSchema = Type.Object({
  cpuSeconds: Type.Number(),
  wallSeconds: Type.Number(),
  rssMb: Type.Number(),
  diskFreeMb: Type.Optional(Type.Number()),
  loadAverage: Type.Optional(Type.Number()),
  /** The last lines of stdout (job peek). */
  stdoutTail: Type.Optional(Type.String({ maxLength: 65_536 })),
});
export type Heartbeat = Static<typeof HeartbeatSchema>;

export const JobCommandSchema = Type.Object({ jobId: Type.Integer(), command: Type.String(), arguments: Type.String() });
export type JobCommand = Static<typeof JobCommandSchema>;

export const HeartbeatAnswerSchema = Type.Object({
  status: Type.Enum(JOB_STATES),
  commands: Type.Array(JobCommandSchema),
  /** A renewed job token, when the one used is past half its life: use it from now on. */
  token: Type.Optional(Type.String()),
  tokenExpiresAt: Type.Optional(Type.String({ format: 'date-time' })),
});
export type HeartbeatAnswer = Static<typeof HeartbeatAnswerSchema>;

/** Messages the services push on a pilot's websocket: commands for its jobs; new work waits. */
export type PilotPush = { type: 'commands'; commands: JobCommand[] } | { type: 'work' };

/** Job states in which a job token no longer works (the job is over). */
export const JOB_TOKEN_DEAD_STATES = ['Done', 'Failed', 'Killed', 'Deleted'] as const;

/** The 403 message for a job token whose job is over; `jobStateOfDeadToken` reads it back. */
export function jobTokenDeadMessage(jobId: number, status: string): string {
  return `job ${jobId} is ${status}: its job token no longer works`;
}

/** The job's state named by a `jobTokenDeadMessage` (null when `message` is not one). */
export function jobStateOfDeadToken(message: string): (typeof JOB_STATES)[number] | null {
  const m = / is ([A-Za-z]+): its job token no longer works/.exec(message);
  const s = m?.[1];
  return s !== undefined && (JOB_STATES as readonly string[]).includes(s) ? (s as (typeof JOB_STATES)[number]) : null;
}

/** The 403 message for a pilot token whose pilot is final (or has no record). */
export function pilotTokenDeadMessage(pilotId: number, status: string | null): string {
  return status === null
    ? `pilot ${pilotId} has no record: its token no longer works`
    : `pilot ${pilotId} is ${status}: its token no longer works`;
}
