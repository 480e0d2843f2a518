/**
 * The matcher's explanations as the API answers them (api/matcher.ts), mapped from the db
 * shapes `ExplainResource` and `ExplainJob`. The job explanation adds `blockers`: for a Waiting
 * job, one sentence per thing that stops it from running now, so a user does not have to read
 * every queue (a job in another state has its `note` instead).
 */
import type { ExplainJob as ExplainJobView, ExplainResource as ExplainResourceView, TaskQueue } from '../api/index.js';
import type { ExplainJob, ExplainResource, TaskQueueRow } from '../db/index.js';

function taskQueueView(tq: TaskQueueRow): TaskQueue {
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

/**
 * What stops a Waiting job as a whole: no queue registered, or none that can run it (saying
 * how many of them would, once their own blockers end, so the user knows the JDL is not at fault).
 */
function jobBlockers(e: ExplainJob): string[] {
  if (!e.waiting || e.queues.some((q) => q.canRun)) return [];
  if (e.queues.length === 0) return ['no computing-element queue is registered: no pilot will be sent for this job'];
  const fit = e.queues.filter((q) => q.blockers.every((b) => b.kind !== 'requirement' && b.kind !== 'no-task-queue')).length;
  const waitForQueues = fit > 0 ? `; its requirements fit ${fit} of them, which get no pilot now` : '';
  return [`none of the ${e.queues.length} registered queues can run this job (see their reasons)${waitForQueues}`];
}

export function explainJobView(e: ExplainJob): ExplainJobView {
  return {
    job: e.job,
    waiting: e.waiting,
    note: e.note,
    blockers: jobBlockers(e),
    taskQueue: e.taskQueue ? taskQueueView(e.taskQueue) : null,
    queues: e.queues.map((q) => ({ ...q, pausedUntil: q.pausedUntil?.toISOString() ?? null })),
  };
}
