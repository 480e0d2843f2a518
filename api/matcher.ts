/**
 * The matcher: what a pilot offers (the resource description), the job it gets, and the
 * explanations of why work does or does not flow (for a resource, for a job).
 */
import { Type, type Static } from 'typebox';
import { INT4_MAX, MAX_NAME_LENGTH, MAX_TAGS } from '../core/job-model.js';
import { ClaimIdSchema } from '../core/pilot-protocol.js';
import { EXPLAIN_REASON_KINDS } from '../core/queue-blockers.js';
import { DateTime, JobStateSchema, Nullable, ref } from './common.js';

const Name = Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH });

/** What a pilot offers; mirrors `ResourceDescription` in core/matching.ts. */
export const ResourceSchema = Type.Object(
  {
    site: Name,
    ce: Type.Optional(Name),
    queue: Type.Optional(Name),
    platform: Type.Optional(Name),
    tags: Type.Optional(Type.Array(Name, { maxItems: MAX_TAGS })),
    requiredTags: Type.Optional(Type.Array(Name, { maxItems: MAX_TAGS })),
    processors: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    ramMb: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    gpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    cpuWork: Type.Number({
      minimum: 0,
      maximum: 1e15,
      description: 'CPU work the pilot can still deliver: time left x DB12 (normalized seconds)',
    }),
    vo: Type.Optional(Name),
    ownerGroups: Type.Optional(Type.Array(Name, { maxItems: 256 })),
    jobTypes: Type.Optional(Type.Array(Name, { maxItems: 64 })),
    /** A pilot's id of this match attempt (optional: admins, older pilots). */
    claimId: Type.Optional(ClaimIdSchema),
  },
  {
    $id: 'Resource',
    additionalProperties: false,
    description: "What a pilot offers (a pilot token: site, CE and queue are its record's).",
  },
);
export type Resource = Static<typeof ResourceSchema>;

export const MatchSchema = Type.Object(
  {
    jobId: Type.Integer(),
    jdl: Type.String(),
    owner: Type.String(),
    ownerGroup: Type.String(),
    vo: Type.String(),
    token: Type.String({ description: 'job token: role job, bound to this job id' }),
    tokenExpiresAt: DateTime(),
  },
  { $id: 'Match', description: 'The job handed to a pilot, with its job token.' },
);
export type Match = Static<typeof MatchSchema>;

export const MatchAnswerSchema = Type.Object(
  { match: Nullable(ref(MatchSchema)) },
  { $id: 'MatchAnswer', description: 'A job, or `{ match: null }` when none fits (a normal answer, not an error).' },
);
export type MatchAnswer = Static<typeof MatchAnswerSchema>;

const Names = Type.Array(Type.String());

const taskQueueProperties = {
  id: Type.Integer(),
  owner: Type.String(),
  ownerGroup: Type.String(),
  vo: Type.String(),
  cpuTime: Type.Integer({ description: 'CPU-time segment, normalized seconds' }),
  priority: Type.Integer(),
  processors: Type.Integer(),
  ramMb: Type.Integer(),
  gpus: Type.Integer(),
  sites: Names,
  bannedSites: Names,
  gridCEs: Names,
  platforms: Names,
  jobTypes: Names,
  tags: Names,
  sharePriority: Type.Number({ description: 'fair-share weight' }),
  waitingJobs: Type.Integer(),
};

export const TaskQueueSchema = Type.Object(taskQueueProperties, {
  $id: 'TaskQueue',
  description: 'A task queue: jobs of the same requirements and owner group, waiting.',
});
export type TaskQueue = Static<typeof TaskQueueSchema>;

export const BanStateSchema = Type.Object(
  { name: Type.String(), registered: Type.Boolean(), banned: Type.Boolean(), reason: Nullable(Type.String()) },
  { $id: 'BanState' },
);
export type BanState = Static<typeof BanStateSchema>;

export const ExplainResourceSchema = Type.Object(
  {
    resource: Type.Object(
      {
        site: Type.String(),
        ce: Type.Optional(Type.String()),
        queue: Type.Optional(Type.String()),
        platform: Type.Optional(Type.String()),
        tags: Names,
        requiredTags: Names,
        processors: Type.Integer(),
        ramMb: Type.Integer(),
        gpus: Type.Integer(),
        cpuWork: Type.Number(),
        vo: Type.Optional(Type.String()),
        ownerGroups: Type.Optional(Names),
        jobTypes: Type.Optional(Names),
      },
      { description: 'the resource as the matcher reads it (required tags added to the tags)' },
    ),
    site: ref(BanStateSchema),
    ce: Nullable(ref(BanStateSchema)),
    blockers: Type.Array(Type.String(), { description: 'what stops every match (banned site or CE)' }),
    taskQueues: Type.Array(
      Type.Object({
        ...taskQueueProperties,
        eligible: Type.Boolean(),
        reasons: Type.Array(Type.String(), { description: 'why this task queue is rejected' }),
      }),
    ),
  },
  { $id: 'ExplainResource', description: 'For a resource: each task queue considered and why it was rejected.' },
);
export type ExplainResource = Static<typeof ExplainResourceSchema>;

/** One thing that stops a job from running at a queue (a part of ExplainJob). */
const ExplainReasonSchema = Type.Object(
  {
    kind: Type.Enum(EXPLAIN_REASON_KINDS, {
      description:
        'site-banned, ce-banned, queue-paused (CE health), vo-not-served, waiting-pilots-full (maxWaitingPilots), ' +
        'total-pilots-full (maxTotalPilots), ce-settings-invalid: the queue gets no new pilot (the site admin acts or the ' +
        "block ends by itself); requirement: the job needs what the queue's pilots lack (the user can change the JDL); " +
        'no-task-queue: the job is in no task queue',
    }),
    reason: Type.String({ description: 'one sentence, as the CLI and the dashboard show it' }),
  },
  { description: 'one thing that stops the job from running at this queue' },
);
export type ExplainReason = Static<typeof ExplainReasonSchema>;

export const ExplainJobSchema = Type.Object(
  {
    job: Type.Object({
      id: Type.Integer(),
      status: JobStateSchema,
      minorStatus: Type.String(),
      site: Type.String(),
      owner: Type.String(),
      ownerGroup: Type.String(),
      vo: Type.String(),
      taskQueueId: Nullable(Type.Integer()),
    }),
    waiting: Type.Boolean({ description: 'the matcher may hand the job out' }),
    note: Nullable(
      Type.String({ description: 'a job that is not Waiting: what it is instead ("job 12 is Done: it is not waiting for a pilot")' }),
    ),
    blockers: Type.Array(Type.String(), {
      description: 'a Waiting job: what stops it from running now, empty when a queue can run it; any other job: empty (see note)',
    }),
    taskQueue: Nullable(ref(TaskQueueSchema)),
    queues: Type.Array(
      Type.Object({
        queueId: Type.Integer(),
        queue: Type.String(),
        ce: Type.String(),
        ceType: Type.String(),
        site: Type.String(),
        canRun: Type.Boolean({ description: 'nothing stops a pilot of this queue from running the job' }),
        reasons: Type.Array(Type.String(), { description: 'the texts of blockers, in order' }),
        blockers: Type.Array(ExplainReasonSchema, {
          description: "what stops it, by kind: the queue's own blockers (the site director's rules) first, then the job's requirements",
        }),
        pausedUntil: Nullable(DateTime('when the pause of this queue ends (CE health); null when it is not paused')),
        pilots: Type.Object(
          {
            waiting: Type.Integer({ description: 'pilots submitted or idle' }),
            total: Type.Integer({ description: 'live pilots (not final)' }),
            maxWaiting: Type.Integer({ description: 'maxWaitingPilots' }),
            maxTotal: Type.Integer({ description: 'maxTotalPilots' }),
          },
          { description: "the queue's pilots now, and its limits" },
        ),
      }),
      { description: 'every registered CE queue: could a pilot from it run the job, and what stops it' },
    ),
  },
  { $id: 'ExplainJob', description: 'For a job: which registered queues could run it, and what stops it.' },
);
export type ExplainJob = Static<typeof ExplainJobSchema>;
