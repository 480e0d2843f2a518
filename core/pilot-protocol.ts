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
 * | registration with environment, clock offset, DB12 | `POST /api/pilots/self/register` |
 * | remote log lines, in batches | `POST /api/pilots/self/logs` |
 * | commands pushed at once (kill) | websocket `GET /api/pilots/self/ws` |
 * | ask for work | `POST /api/match` |
 * | job status and parameters | `POST /api/jobs/:id/status` (job token) |
 * | heartbeat; the answer carries commands | `POST /api/jobs/:id/heartbeat` (job token) |
 * | sandboxes | `GET`/`PUT /api/sandboxes/:sha256` (job token) |
 * | end of the pilot | `POST /api/pilots/self/status` `{status: Done or Failed, reason, exitCode}` |
 */
import { Type, type Static } from 'typebox';
import { JOB_STATES } from './job-states.js';

/** The environment variables the wrapper hands to the pilot. */
export const PILOT_ENV = {
  url: 'WMS_PILOT_URL',
  token: 'WMS_PILOT_TOKEN',
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

export const RegisterAnswerSchema = Type.Object({
  pilotId: Type.Integer(),
  status: Type.String({ description: 'Running, or Failed when refused' }),
  reason: Type.String(),
});
export type RegisterAnswer = Static<typeof RegisterAnswerSchema>;

export const PilotStatusReportSchema = Type.Object({
  status: Type.Union([Type.Literal('Running'), Type.Literal('Done'), Type.Literal('Failed')]),
  reason: Type.String({ maxLength: 2000 }),
  exitCode: Type.Optional(Type.Integer()),
});
export type PilotStatusReport = Static<typeof PilotStatusReportSchema>;

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
});
export type JobStatusReport = Static<typeof JobStatusReportSchema>;

export const JobStatusAnswerSchema = Type.Object({
  accepted: Type.Boolean({ description: 'false when the job was no longer in a state that allows the change' }),
  status: Type.Enum(JOB_STATES),
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

export const HeartbeatAnswerSchema = Type.Object({ status: Type.Enum(JOB_STATES), commands: Type.Array(JobCommandSchema) });
export type HeartbeatAnswer = Static<typeof HeartbeatAnswerSchema>;

/** Messages the services push on a pilot's websocket: commands for its jobs; new work waits. */
export type PilotPush = { type: 'commands'; commands: JobCommand[] } | { type: 'work' };
