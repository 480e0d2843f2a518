/**
 * The matcher's explanations as the API answers them (api/matcher.ts), mapped from the db
 * shapes `ExplainResource` and `ExplainJob`. The job explanation adds `blockers`: one sentence per
 * thing that stops the job from running now, so a user does not have to read every queue.
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
