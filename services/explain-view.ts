/**
 * The matcher's explanations as the API answers them (schemas and mappers from the db shapes
 * `ExplainResource` and `ExplainJob`). The job explanation adds `blockers`: one sentence per
 * thing that stops the job from running now, so a user does not have to read every queue.
 */
import { Type, type Static } from 'typebox';
import type { ExplainJob, ExplainResource, TaskQueueRow } from '../db/index.js';
import { JobStateSchema, Nullable } from './schemas.js';

const Names = Type.Array(Type.String());

export const TaskQueueSchema = Type.Object({
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
});

const BanStateSchema = Type.Object({
  name: Type.String(),
  registered: Type.Boolean(),
  banned: Type.Boolean(),
  reason: Nullable(Type.String()),
});

export const ExplainResourceSchema = Type.Object({
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
  site: BanStateSchema,
  ce: Nullable(BanStateSchema),
  blockers: Type.Array(Type.String(), { description: 'what stops every match (banned site or CE)' }),
  taskQueues: Type.Array(
    Type.Object({
      ...TaskQueueSchema.properties,
      eligible: Type.Boolean(),
      reasons: Type.Array(Type.String(), { description: 'why this task queue is rejected' }),
    }),
  ),
});

export const ExplainJobSchema = Type.Object({
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
  note: Nullable(Type.String()),
  blockers: Type.Array(Type.String(), { description: 'what stops the job from running now; empty when a queue can run it' }),
  taskQueue: Nullable(TaskQueueSchema),
  queues: Type.Array(
    Type.Object({
      queueId: Type.Integer(),
      queue: Type.String(),
      ce: Type.String(),
      ceType: Type.String(),
      site: Type.String(),
      canRun: Type.Boolean(),
      reasons: Type.Array(Type.String()),
    }),
    { description: 'every registered CE queue: could a pilot from it run the job, and what stops it' },
  ),
});

export type ExplainResourceView = Static<typeof ExplainResourceSchema>;
export type ExplainJobView = Static<typeof ExplainJobSchema>;

function taskQueueView(tq: TaskQueueRow): Static<typeof TaskQueueSchema> {
  return {
    id: Number(tq.id),
    owner: tq.owner,
    ownerGroup: tq.ownerGroup,
    vo: tq.vo,
    cpuTime: Number(tq.cpuTime),
    priority: Number(tq.priority),
    processors: Number(tq.processors),
    ramMb: Number(tq.ramMb),
    gpus: Number(tq.gpus),
    sites: tq.sites,
    bannedSites: tq.bannedSites,
    gridCEs: tq.gridCEs,
    platforms: tq.platforms,
    jobTypes: tq.jobTypes,
    tags: tq.tags,
    sharePriority: Number(tq.sharePriority),
    waitingJobs: Number(tq.waitingJobs),
  };
}

export function explainResourceView(e: ExplainResource): ExplainResourceView {
  return {
    resource: e.resource,
    site: e.site,
    ce: e.ce,
    blockers: e.blockers,
    taskQueues: e.taskQueues.map((tq) => ({ ...taskQueueView(tq), eligible: tq.eligible, reasons: tq.reasons })),
  };
}

export function explainJobView(e: ExplainJob): ExplainJobView {
  const blockers: string[] = [];
  if (e.note) blockers.push(e.note);
  if (e.waiting) {
    if (e.queues.length === 0) {
      blockers.push('no computing-element queue is registered: no pilot will be sent for this job');
    } else if (!e.queues.some((q) => q.canRun)) {
      blockers.push(`none of the ${e.queues.length} registered queues can run this job (see their reasons)`);
    }
  }
  return {
    job: e.job,
    waiting: e.waiting,
    note: e.note,
    blockers,
    taskQueue: e.taskQueue ? taskQueueView(e.taskQueue) : null,
    queues: e.queues,
  };
}
